"""Weights in a real ComfyUI with downloads turned off (FOM_ALLOW_DOWNLOAD=0) and an empty models
folder: FOMLoadModel still offers PaddleGAN's three releases, picking one passes validation and fails
with the command line's one-line error (URL and exact path), leaving nothing behind; the face
detector lists only files its backends load."""

from __future__ import annotations

import os

import pytest
import torch
from comfy_host import ARTIFACTS, ComfyServer, PromptError, execution_error, free_port
from workflow_files import model_prompt

from fom_pipeline import weights
from fom_pipeline.testing import random_model, write_model_pdparams

RELEASES = ["vox-cpk.pdparams", "vox-cpk-512.pdparams", "vox-mobile.pdparams"]


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory, comfy_host):
    base = tmp_path_factory.mktemp("comfy_offline")
    fom = base / "models" / "fom"
    faces = base / "models" / "face_detection"
    fom.mkdir(parents=True)
    faces.mkdir(parents=True)
    write_model_pdparams(fom / "my-model-384.pdparams", random_model(seed=2))
    write_model_pdparams(fom / "vox_mobile.pdparams", random_model(seed=3))  # the other spelling
    torch.save({"x": torch.zeros(1)}, faces / "s3fd-619a316812.pth")
    torch.save({"x": torch.zeros(1)}, faces / "blazeface.pth")
    (faces / "anchors.npy").write_bytes(b"\x93NUMPY")
    (faces / "notes.txt").write_text("not weights")
    server = ComfyServer(base_dir=base, port=free_port(), host=comfy_host,
                         log_path=ARTIFACTS / f"comfyui-server-offline-{comfy_host.name}.log")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOM_ALLOW_DOWNLOAD", "0")
        server.start()
    yield server
    server.stop()


def _load_prompt(ckpt_name: str, image_size: int = 0) -> dict:
    return model_prompt("face.png", ckpt_name, image_size=image_size)


@pytest.fixture(scope="module")
def with_image(offline_server):
    import cv2
    import numpy as np

    image = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype("uint8")
    cv2.imwrite(str(offline_server.base_dir / "input" / "face.png"), image)
    return offline_server


def _options(server, node: str, name: str) -> list:
    info = server.get_json(f"/object_info/{node}")[node]["input"]
    return {**info["required"], **info.get("optional", {})}[name][1]["options"]


def test_releases_are_offered_before_they_are_on_disk(offline_server):
    options = _options(offline_server, "FOMLoadModel", "ckpt_name")
    assert options == [*RELEASES, "my-model-384.pdparams", "vox_mobile.pdparams"]


def test_missing_release_fails_with_the_command_lines_error(with_image):
    server = with_image
    entry = server.run(_load_prompt("vox-cpk-512.pdparams"), timeout=120)  # passes validation, fails to run
    assert entry["status"]["status_str"] == "error"
    err = execution_error(entry)
    assert err["node_type"] == "FOMLoadModel"
    dest = server.base_dir / "models" / "fom" / "vox-cpk-512.pdparams"
    url = weights.KNOWN_WEIGHTS["vox-cpk-512"].url
    assert err["exception_message"].strip() == (
        "FOMLoadModel: vox-cpk-512.pdparams is missing (downloads are turned off, FOM_ALLOW_DOWNLOAD=0): "
        f"download {url} and save it as {dest}")
    assert sorted(os.listdir(dest.parent)) == ["my-model-384.pdparams", "vox_mobile.pdparams"]


def _defaults(server, node: str) -> dict:
    """Every widget input of ``node`` at its default, read from the host's /object_info."""
    info = server.get_json(f"/object_info/{node}")[node]["input"]
    return {name: spec[1]["default"] for name, spec in info["required"].items()
            if len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1]}


def _animated_size(server, ckpt_name: str, image_size: int) -> tuple[int, int]:
    """Run load -> keypoints -> transfer onto the picture -> frames; the frames' size is the model's."""
    import cv2

    prompt = _load_prompt(ckpt_name, image_size)
    prompt["6"] = {"class_type": "FOMTransferMotion", "inputs": {
        **_defaults(server, "FOMTransferMotion"), "model": ["2", 0], "source": ["1", 0],
        "driving_keypoints": ["3", 0]}}
    prompt["7"] = {"class_type": "FOMAnimationToImages", "inputs": {"animation": ["6", 0]}}
    prompt["8"] = {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}}
    entry = server.run(prompt, timeout=150)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    frame = cv2.imread(str(server.output_path(entry["outputs"]["8"]["images"][0])))
    return frame.shape[:2]


@pytest.mark.timeout(300)
def test_release_name_finds_the_other_spelling_and_sizes_follow_the_file(with_image):
    server = with_image
    before = server.log_size()
    entry = server.run(_load_prompt("vox-mobile.pdparams"), timeout=120)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert "FOM: loading vox-mobile.pdparams" in server.log_text()[before:]
    # image_size 0 = from the file name (384); an explicit size wins
    assert _animated_size(server, "my-model-384.pdparams", 0) == (384, 384)
    assert _animated_size(server, "my-model-384.pdparams", 256) == (256, 256)
    # a size the networks cannot run is refused by the node with the engine's message
    entry = server.run(_load_prompt("my-model-384.pdparams", 320), timeout=120)
    assert entry["status"]["status_str"] == "error"
    assert "image_size 320 (asked for) does not fit this model's networks" in execution_error(entry)["exception_message"]


def test_face_detector_lists_only_loadable_weights(offline_server):
    assert _options(offline_server, "FOMLoadFaceDetector", "weights") == ["auto", "blazeface.pth",
                                                                          "s3fd-619a316812.pth"]
    prompt = {"1": {"class_type": "FOMLoadFaceDetector",
                    "inputs": {"backend": "sfd", "weights": "blazeface.pth", "device": "cpu"}},
              "2": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
              "3": {"class_type": "FOMDetectFaces", "inputs": {**_defaults(offline_server, "FOMDetectFaces"),
                                                              "detector": ["1", 0], "image": ["2", 0]}},
              "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 1]}}}
    with pytest.raises(PromptError) as err:
        offline_server.queue_prompt(prompt)
    details = " ".join(e["details"] for e in err.value.body["node_errors"]["1"]["errors"])
    assert "is BlazeFace weights; pick the blazeface backend" in details
    prompt["1"]["inputs"].update(weights="anchors.npy")
    with pytest.raises(PromptError) as err:
        offline_server.queue_prompt(prompt)
    assert "anchors.npy" in str(err.value.body["node_errors"]["1"])
