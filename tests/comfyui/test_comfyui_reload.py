"""A weights file replaced under the same name is loaded again in the real host: the loaders'
``fingerprint_inputs`` (the file's path, modification time and size) make ComfyUI run the loader
again, and the pack's model cache is keyed by the same identity, so the new weights are used. An
unchanged file is not loaded twice."""

from __future__ import annotations

import os
from pathlib import Path

import assets
import numpy as np
import torch
from comfy_host import execution_error, status_messages
from PIL import Image
from workflow_files import model_prompt

RELOAD = "fom-reload.pdparams"
REFERENCE = "fom-reload-reference.pdparams"  # the replacement's weights under another name
DETECTOR = "s3fd-reload.pth"


def _cached(entry: dict) -> set[str]:
    return {node for event, data in status_messages(entry) if event == "execution_cached" for node in data["nodes"]}


def _image(server, entry: dict, node: str) -> np.ndarray:
    return np.asarray(Image.open(server.output_path(entry["outputs"][node]["images"][0])).convert("RGB"))


def _replace(path: Path, write) -> None:
    """Write new content to a side file and move it over ``path`` (as a copy or a download does), with
    a modification time clearly after the old one."""
    before = path.stat().st_mtime_ns
    side = path.parent.parent / "replacements" / path.name  # same name (torch.save writes it into the file)
    side.parent.mkdir(exist_ok=True)
    write(side)
    os.replace(side, path)
    os.utime(path, ns=(before + 5_000_000_000, before + 5_000_000_000))


def test_replaced_checkpoint_is_loaded_again(comfy_env):
    server = comfy_env
    fom = comfy_env.base_dir / "models" / "fom"
    assets.write_fomm_checkpoint(fom / RELOAD, seed=11)
    assets.write_fomm_checkpoint(fom / REFERENCE, seed=12)
    prompt = model_prompt(assets.PHOTO_FACE, RELOAD)

    def loads() -> int:
        return server.log_text().count(f"FOM: loading {RELOAD} ")

    first_loads = loads()
    first = server.run(prompt)
    assert first["status"]["status_str"] == "success", execution_error(first)
    assert loads() == first_loads + 1
    old = _image(server, first, "5")

    again = server.run(model_prompt(assets.PHOTO_FACE, RELOAD, batch_size=4))  # same file: loader cached
    assert again["status"]["status_str"] == "success", execution_error(again)
    assert "2" in _cached(again) and loads() == first_loads + 1

    size = (fom / RELOAD).stat().st_size
    _replace(fom / RELOAD, lambda side: assets.write_fomm_checkpoint(side, seed=12))
    print(f"checkpoint replaced: {size} -> {(fom / RELOAD).stat().st_size} bytes")
    after = server.run(prompt)
    assert after["status"]["status_str"] == "success", execution_error(after)
    assert "2" not in _cached(after), "ComfyUI kept the loader's output for the replaced file"
    assert loads() == first_loads + 2, "the replaced checkpoint was not loaded again"
    new = _image(server, after, "5")

    reference = server.run(model_prompt(assets.PHOTO_FACE, REFERENCE))
    assert reference["status"]["status_str"] == "success", execution_error(reference)
    assert np.array_equal(new, _image(server, reference, "5")), "the keypoints are not the new weights'"
    assert not np.array_equal(new, old)


def _detector_prompt() -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": assets.PHOTO_MULTI}},
        "2": {"class_type": "FOMLoadFaceDetector", "inputs": {"backend": "sfd", "weights": DETECTOR, "device": "cpu"}},
        "3": {"class_type": "FOMDetectFaces", "inputs": {"detector": ["2", 0], "image": ["1", 0], "threshold": 0.5,
                                                         "max_faces": 1, "order": "left_to_right",
                                                         "crop_mode": "square", "crop_scale": 2.0, "size": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 2]}},
    }


def _write_sfd(path: Path, finds_faces: bool = True) -> None:
    """The test detector (assets.write_sfd_weights), saved again by torch.save so that both variants
    are written alike; ``finds_faces=False`` turns its one face-finding head to background."""
    assets.write_sfd_weights(path)
    state = torch.load(path, weights_only=True)
    if not finds_faces:
        state["conv7_2_mbox_conf.bias"] = torch.tensor([4.0, 0.0])
    torch.save(state, path)


def test_replaced_face_detector_is_loaded_again(comfy_env):
    server = comfy_env
    path = comfy_env.base_dir / "models" / "face_detection" / DETECTOR
    _write_sfd(path)

    def loads() -> int:
        return server.log_text().count(f"FOM: loading face detector sfd ({DETECTOR}, ")

    first_loads = loads()
    first = server.run(_detector_prompt())
    assert first["status"]["status_str"] == "success", execution_error(first)
    assert loads() == first_loads + 1

    size = path.stat().st_size
    _replace(path, lambda side: _write_sfd(side, finds_faces=False))
    assert path.stat().st_size == size  # same tensors, new values: only the modification time tells
    after = server.run(_detector_prompt())
    assert loads() == first_loads + 2, "the replaced detector was not loaded again"
    assert after["status"]["status_str"] == "error"
    err = execution_error(after)
    assert err["node_type"] == "FOMDetectFaces" and "no face found" in err["exception_message"]
