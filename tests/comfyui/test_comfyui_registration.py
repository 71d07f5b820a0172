"""Registration: every node of the pack in /object_info as declared, folders, templates, workflows."""

import json

import pytest
from comfy_host import PACK_NAME, REPO

PACK_NODES = ["FOMLoadModel", "FOMLoadFaceDetector", "FOMDetectFaces", "FOMFacesFromBoxes", "FOMSelectFaces",
              "FOMCropDrivingVideo", "FOMExtractKeypoints", "FOMTransferMotion", "FOMAnimationToImages",
              "FOMAnimationToVideo", "FOMPasteFaces", "FOMDrawKeypoints", "FOMSaveMotion", "FOMLoadMotion"]
# Composition only (holds every frame): not in the streaming workflows, run by test_comfyui_streaming.py.
# Motion files: run by test_comfyui_motion_files.py (save in one prompt, load in another).
NOT_IN_WORKFLOWS = {"FOMAnimationToImages", "FOMSaveMotion", "FOMLoadMotion"}
WORKFLOWS = ["multi_face_animation", "single_face", "faces_by_hand_two_drivers", "face_restoration",
             "faces_in_a_video"]

# (node, input) -> (type, {expected option subset})
DECLARED = {
    ("FOMLoadModel", "device"): ("COMBO", {"default": "auto", "options": ["auto", "cpu", "cuda", "mps"]}),
    ("FOMLoadModel", "precision"): ("COMBO", {"default": "auto", "options": ["auto", "fp32", "bf16", "fp16"]}),
    ("FOMLoadModel", "warp_border"): ("COMBO", {"default": "auto", "options": ["auto", "paddlegan", "plain"]}),
    ("FOMLoadModel", "image_size"): ("INT", {"default": 0, "min": 0}),
    ("FOMLoadFaceDetector", "backend"): ("COMBO", {"default": "sfd"}),
    ("FOMDetectFaces", "detector"): ("FOM_FACE_DETECTOR", {}),
    ("FOMDetectFaces", "image"): ("IMAGE,VIDEO", {}),
    ("FOMFacesFromBoxes", "image"): ("IMAGE,VIDEO", {}),
    ("FOMDetectFaces", "threshold"): ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0}),
    ("FOMDetectFaces", "max_faces"): ("INT", {"default": 0, "min": 0}),
    ("FOMDetectFaces", "order"): ("COMBO", {"default": "left_to_right",
                                            "options": ["left_to_right", "largest", "top_to_bottom"]}),
    ("FOMDetectFaces", "crop_mode"): ("COMBO", {"default": "square", "options": ["square", "paddlegan"]}),
    ("FOMDetectFaces", "crop_scale"): ("FLOAT", {"default": 2.0}),
    ("FOMDetectFaces", "size"): ("INT", {"default": 0, "min": 0}),
    ("FOMFacesFromBoxes", "boxes"): ("STRING", {}),
    ("FOMSelectFaces", "faces"): ("FOM_FACES", {}),
    ("FOMSelectFaces", "indices"): ("STRING", {"default": "1"}),
    ("FOMCropDrivingVideo", "driving"): ("VIDEO,IMAGE", {}),
    ("FOMCropDrivingVideo", "size"): ("INT", {"default": 0, "min": 0}),
    ("FOMExtractKeypoints", "model"): ("FOM_MODEL", {}),
    ("FOMExtractKeypoints", "driving"): ("VIDEO,IMAGE", {}),
    ("FOMExtractKeypoints", "fps"): ("FLOAT", {"default": 0.0, "forceInput": True}),
    ("FOMTransferMotion", "source"): ("FOM_FACES,IMAGE", {}),
    ("FOMExtractKeypoints", "batch_size"): ("INT", {"default": 32, "min": 1}),
    ("FOMExtractKeypoints", "smooth"): ("INT", {"default": 0, "min": 0}),
    ("FOMSaveMotion", "keypoints"): ("FOM_KEYPOINTS", {}),
    ("FOMSaveMotion", "filename_prefix"): ("STRING", {"default": "fom_motion/motion"}),
    ("FOMLoadMotion", "model"): ("FOM_MODEL", {}),
    ("FOMLoadMotion", "smooth"): ("INT", {"default": 0, "min": 0}),
    ("FOMLoadMotion", "audio"): ("AUDIO", {}),
    ("FOMTransferMotion", "driving_keypoints"): ("FOM_KEYPOINTS", {}),
    ("FOMTransferMotion", "relative"): ("BOOLEAN", {"default": True}),
    ("FOMTransferMotion", "adapt_scale"): ("BOOLEAN", {"default": True}),
    ("FOMTransferMotion", "relative_jacobian"): ("COMBO", {"default": "auto", "options": ["auto", "on", "off"]}),
    ("FOMTransferMotion", "reference_frame"): ("COMBO", {"default": "first", "options": ["first", "index", "best"]}),
    ("FOMTransferMotion", "batch_size"): ("INT", {"default": 8, "min": 1}),
    ("FOMPasteFaces", "ratio"): ("FLOAT", {"default": 0.4, "min": 0.1, "max": 1.0}),
    ("FOMPasteFaces", "feather"): ("FLOAT", {"default": -1.0}),
    ("FOMPasteFaces", "color_match"): ("COMBO", {"default": "off", "options": ["off", "lab", "rgb"]}),
    ("FOMPasteFaces", "image"): ("IMAGE,VIDEO", {}),
    ("FOMPasteFaces", "audio"): ("COMBO", {"default": "source", "options": ["source", "driving", "none"]}),
    ("FOMPasteFaces", "animation"): ("FOM_ANIMATION", {}),
    ("FOMPasteFaces", "edited_crops"): ("IMAGE", {}),
    ("FOMAnimationToVideo", "face"): ("INT", {"default": 1, "min": 1}),
    ("FOMDrawKeypoints", "driving"): ("VIDEO,IMAGE", {}),
    ("FOMDrawKeypoints", "keypoints"): ("FOM_KEYPOINTS", {}),
    ("FOMDrawKeypoints", "frames"): ("INT", {"default": 8, "min": 0}),
}
OUTPUTS = {
    "FOMLoadModel": ["FOM_MODEL"],
    "FOMLoadFaceDetector": ["FOM_FACE_DETECTOR"],
    "FOMDetectFaces": ["FOM_FACES", "IMAGE", "IMAGE"],
    "FOMFacesFromBoxes": ["FOM_FACES", "IMAGE", "IMAGE"],
    "FOMSelectFaces": ["FOM_FACES", "IMAGE"],
    "FOMCropDrivingVideo": ["VIDEO"],
    "FOMExtractKeypoints": ["FOM_KEYPOINTS"],
    "FOMTransferMotion": ["FOM_ANIMATION"],
    "FOMAnimationToImages": ["IMAGE"],
    "FOMAnimationToVideo": ["VIDEO"],
    "FOMPasteFaces": ["VIDEO"],
    "FOMDrawKeypoints": ["IMAGE"],
    "FOMSaveMotion": [],
    "FOMLoadMotion": ["FOM_KEYPOINTS"],
}


@pytest.fixture(scope="module")
def object_info(comfy_env):
    return comfy_env.get_json("/object_info")


def _inputs(info: dict) -> dict:
    return {**info["input"].get("required", {}), **info["input"].get("optional", {})}


@pytest.mark.parametrize("node", PACK_NODES)
def test_node_registered_with_description_and_tooltips(object_info, node):
    info = object_info[node]
    assert info["category"] == "FOM"
    assert len(info["description"]) > 20
    assert info["output"] == OUTPUTS[node]
    for name, (_type, opts) in _inputs(info).items():
        assert opts.get("tooltip"), f"{node}.{name} has no tooltip"


def test_inputs_types_and_defaults_as_declared(object_info):
    for (node, name), (typ, expected) in DECLARED.items():
        got_type, got = _inputs(object_info[node])[name]
        assert got_type == typ, (node, name, got_type)
        for key, value in expected.items():
            assert got.get(key) == value, (node, name, key, got.get(key))


def test_model_folders_list_generated_files(object_info):
    ckpts = _inputs(object_info["FOMLoadModel"])["ckpt_name"][1]["options"]
    # PaddleGAN's releases first (downloaded when picked), each once, whether on disk or not
    assert ckpts[:3] == ["vox-cpk.pdparams", "vox-cpk-512.pdparams", "vox-mobile.pdparams"]
    assert len(ckpts) == len(set(ckpts)), ckpts
    weights = _inputs(object_info["FOMLoadFaceDetector"])["weights"][1]["options"]
    assert weights[0] == "auto" and "s3fd-619a316812.pth" in weights


def test_no_import_error_for_the_pack(comfy_env):
    log = comfy_env.log_text()
    assert f"custom_nodes/{PACK_NAME}" in log
    assert not [ln for ln in log.splitlines() if PACK_NAME in ln and ("IMPORT FAILED" in ln or "Cannot import" in ln)]
    assert "Error while calling comfy_entrypoint" not in log


def test_workflow_templates_lists_the_three(comfy_env):
    templates = comfy_env.get_json("/workflow_templates")
    assert sorted(templates[PACK_NAME]) == sorted(WORKFLOWS)


def test_every_pack_node_is_in_some_workflow():
    used = set()
    for name in WORKFLOWS:
        ui = json.loads((REPO / "workflows" / f"{name}.json").read_text())
        api = json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())
        ui_types = {str(n["id"]): n["type"] for n in ui["nodes"]}
        assert ui_types == {k: v["class_type"] for k, v in api.items()}, name
        used |= set(ui_types.values())
    assert set(PACK_NODES) - NOT_IN_WORKFLOWS <= used, set(PACK_NODES) - NOT_IN_WORKFLOWS - used
