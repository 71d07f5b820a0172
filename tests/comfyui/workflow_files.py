"""The saved workflows, loaded for tests (API and UI format)."""

from __future__ import annotations

import copy
import json

from comfy_host import REPO

WORKFLOWS = ["multi_face_animation", "single_face", "faces_by_hand_two_drivers", "face_restoration",
             "faces_in_a_video"]

# Inputs the run tests change for speed (never the shipped files): multi_face_animation animates every
# face (max_faces 0) and the generated detector finds 16; five show the same path in a third of the time.
FAST_INPUTS = {"multi_face_animation": {"FOMDetectFaces": {"max_faces": 5}},
               # a restorer runs at 512 px per face and frame: one face shows the path
               "face_restoration": {"FOMFacesFromBoxes": {"boxes": "190,170,320,305"}}}


def api(name: str) -> dict:
    return json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())


def ui(name: str) -> dict:
    return json.loads((REPO / "workflows" / f"{name}.json").read_text())


def with_inputs(prompt: dict, class_type: str, **inputs) -> dict:
    """A copy of ``prompt`` with ``inputs`` set on every node of ``class_type``."""
    out = copy.deepcopy(prompt)
    hits = [node for node in out.values() if node["class_type"] == class_type]
    assert hits, class_type
    for node in hits:
        node["inputs"].update(inputs)
    return out


def fast(name: str) -> dict:
    """The API workflow ``name`` with FAST_INPUTS applied: what the run tests POST."""
    prompt = api(name)
    for class_type, inputs in FAST_INPUTS.get(name, {}).items():
        prompt = with_inputs(prompt, class_type, **inputs)
    return prompt


def model_prompt(image: str, ckpt_name: str, batch_size: int = 8, image_size: int = 0) -> dict:
    """The smallest graph that needs a model's networks: load it, take keypoints of a picture, draw them."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "FOMLoadModel", "inputs": {"ckpt_name": ckpt_name, "device": "cpu", "precision": "fp32",
                                                      "warp_border": "auto", "image_size": image_size}},
        "3": {"class_type": "FOMExtractKeypoints", "inputs": {"model": ["2", 0], "driving": ["1", 0],
                                                             "batch_size": batch_size}},
        "4": {"class_type": "FOMDrawKeypoints", "inputs": {"driving": ["1", 0], "keypoints": ["3", 0],
                                                          "frames": 1, "radius": 0}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }


def image_path_twin(prompt: dict) -> dict:
    """faces_by_hand_two_drivers with every frame passed as IMAGE: core Get Video Components in,
    FOM Animation To Images -> edited_crops, IMAGE frames between the pastes, Create Video out."""
    p = {k: dict(v, inputs=dict(v["inputs"])) for k, v in prompt.items()}
    for video, comps, kp in (("6", "7", "10"), ("8", "9", "11")):
        p[comps] = {"class_type": "GetVideoComponents", "inputs": {"video": [video, 0]}}
        p[kp]["inputs"].update(driving=[comps, 0], fps=[comps, 2])
    for anim, images, paste in (("12", "20", "14"), ("13", "21", "15")):
        p[images] = {"class_type": "FOMAnimationToImages", "inputs": {"animation": [anim, 0]}}
        p[paste]["inputs"]["edited_crops"] = [images, 0]
    p["22"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["14", 0]}}
    p["15"]["inputs"]["image"] = ["22", 0]
    p["23"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["15", 0]}}
    p["16"] = {"class_type": "CreateVideo", "inputs": {"images": ["23", 0], "fps": ["7", 2], "audio": ["7", 1]}}
    p["17"]["inputs"]["video"] = ["16", 0]
    return p
