"""Face crops follow the model: with FOM Detect Faces / Faces From Boxes at size 0 (the default), a
384 px model is given faces cut at 384 px from the photo, never 256 px crops scaled up."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from comfy_host import execution_error
from PIL import Image

from fom_pipeline.testing import random_model, write_model_pdparams

MODEL = "crop-test-384.pdparams"  # the size comes from the name


@pytest.fixture(scope="module")
def scene(comfy_env):
    fom = comfy_env.base_dir / "models" / "fom" / MODEL
    if not fom.exists():
        write_model_pdparams(fom, random_model(seed=7))
    # A detailed 800x800 picture: a 256 px crop scaled up loses detail a 384 px crop keeps.
    rng = np.random.default_rng(7)
    image = cv2.resize((rng.random((200, 200, 3)) * 255).astype(np.uint8), (800, 800), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(comfy_env.base_dir / "input" / "detail.png"), image)
    return comfy_env


def _animated(server, size: int) -> np.ndarray:
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "detail.png"}},
        "2": {"class_type": "FOMLoadModel", "inputs": {"ckpt_name": MODEL, "device": "cpu", "precision": "fp32",
                                                      "warp_border": "auto", "image_size": 0}},
        "3": {"class_type": "FOMFacesFromBoxes", "inputs": {"image": ["1", 0], "boxes": "200,200,600,600",
                                                           "crop_mode": "square", "crop_scale": 1.0, "size": size}},
        "4": {"class_type": "FOMExtractKeypoints", "inputs": {"model": ["2", 0], "driving": ["1", 0], "batch_size": 8}},
        "5": {"class_type": "FOMTransferMotion", "inputs": {"model": ["2", 0], "source": ["3", 0],
                                                           "driving_keypoints": ["4", 0], "relative": True,
                                                           "relative_jacobian": "auto", "adapt_scale": True,
                                                           "reference_frame": "first", "reference_index": 0,
                                                           "batch_size": 8}},
        "6": {"class_type": "FOMAnimationToImages", "inputs": {"animation": ["5", 0]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
    }
    entry = server.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    item = entry["outputs"]["7"]["images"][0]
    with Image.open(server.output_path(item)) as img:
        return np.asarray(img.convert("RGB")).astype(np.int16)


@pytest.mark.timeout(300)
def test_auto_crop_size_is_the_models(scene):
    auto, at_384, at_256 = (_animated(scene, size) for size in (0, 384, 256))
    assert auto.shape == at_384.shape == at_256.shape == (384, 384, 3)
    assert np.array_equal(auto, at_384)  # size 0 cut the face at the model's 384 px
    # a 256 px crop scaled up is another input (a random model shows it faintly, but exactly)
    assert np.count_nonzero(auto != at_256) > 1000
