"""Hostile or careless inputs in the real host, over HTTP: each is the node's one-line error in our words,
refused before any large allocation (the server's resident memory, sampled through the prompt, stays
near where it was), nothing is left in the output folder, and the server then serves a good prompt.

The command-line twins are in tests/test_hostile_inputs.py; benchmarks/hostile_inputs.py has the
numbers from before (a width-6000 config: 10.4 GiB; `1-20000000`: about 0.8 GB held; a 3000 px box:
4 GB in ComfyUI).
"""

from __future__ import annotations

import json
import threading
import time

import psutil
import pytest
from assets import CHECKPOINT, DRIVER_CROPPED, PHOTO_FACE, PHOTO_MULTI
from comfy_host import execution_error
from safetensors import safe_open
from safetensors.torch import save_file

MIB = 2**20


def _peak_growth(server, prompt: dict) -> tuple[dict, int]:
    """Run ``prompt``; its history entry and how far the server's RSS rose above where it started."""
    proc = psutil.Process(server.proc.pid)
    start = proc.memory_info().rss
    peak = start
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        entry = server.run(prompt, timeout=240)
    finally:
        done.set()
        sampler.join()
    return entry, peak - start


def _error(entry: dict) -> str:
    assert entry["status"]["status_str"] == "error", entry["status"]
    error = execution_error(entry)
    message = error["exception_message"].strip()
    assert "\n" not in message and "Traceback" not in message, message
    return f"{error['node_type']}: {message}"


def _outputs(server) -> set:
    root = server.base_dir / "output"
    return {p.relative_to(root) for p in root.rglob("*")} if root.exists() else set()


def _keypoints_prompt(ckpt_name: str, driving: list, prefix: str) -> dict:
    """Model -> keypoints of ``driving`` -> FOM Save Motion (an output node, so the chain runs)."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": PHOTO_FACE}},
        "3": {"class_type": "FOMLoadModel", "inputs": {"ckpt_name": ckpt_name, "device": "cpu", "precision": "fp32",
                                                      "warp_border": "auto", "image_size": 0}},
        "4": {"class_type": "FOMExtractKeypoints", "inputs": {"model": ["3", 0], "driving": driving,
                                                             "batch_size": 8}},
        "5": {"class_type": "FOMSaveMotion", "inputs": {"keypoints": ["4", 0], "filename_prefix": prefix}},
    }


def _faces_prompt(image: str, boxes: str, indices: str | None = None) -> dict:
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "FOMFacesFromBoxes", "inputs": {"image": ["1", 0], "boxes": boxes, "crop_mode": "square",
                                                           "crop_scale": 2.0, "size": 256}},
        "9": {"class_type": "PreviewImage", "inputs": {"images": ["2", 1]}},
    }
    if indices is not None:
        prompt["3"] = {"class_type": "FOMSelectFaces", "inputs": {"faces": ["2", 0], "indices": indices}}
        prompt["9"]["inputs"]["images"] = ["3", 1]
    return prompt


def _serves_the_next_prompt(server) -> None:
    entry = server.run(_faces_prompt(PHOTO_FACE, "48,40,208,216"), timeout=120)
    assert entry["status"]["status_str"] == "success", execution_error(entry)


@pytest.fixture(scope="module")
def stored_configs(comfy_env):
    """Our .safetensors of a small model with its stored config replaced: {name: file name in models/fom}."""
    from fom_pipeline.testing import random_model

    folder = comfy_env.base_dir / "models" / "fom"
    good = folder / "hostile-good.safetensors"
    random_model(seed=0).save(good)
    with safe_open(str(good), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    wide = json.loads(meta["config"])
    wide["generator_params"].update(block_expansion=6000, max_features=6000)
    names = {}
    for name, text in (("wide", json.dumps(wide)), ("text", "{not json"), ("list", "[1, 2, 3]")):
        names[name] = f"hostile-{name}.safetensors"
        save_file(tensors, str(folder / names[name]), metadata={**meta, "config": text})
    return names


@pytest.mark.timeout(400)
@pytest.mark.parametrize(("case", "expected"), [
    ("wide", "generator weights do not fit the network its stored config describes: wrong shape: "
             "first.conv.weight (8, 3, 7, 7) != (6000, 3, 7, 7)"),
    ("text", "the model config stored in the file is not JSON (Expecting property name"),
    ("list", "the model config stored in the file is list, not an object of model settings"),
])
def test_a_stored_config_that_is_huge_or_not_settings_is_one_node_error(comfy_env, stored_configs, case, expected):
    before = _outputs(comfy_env)
    entry, growth = _peak_growth(comfy_env, _keypoints_prompt(stored_configs[case], ["1", 0], "hostile/config"))
    message = _error(entry)
    assert message.startswith("FOMLoadModel: ") and expected in message, message
    print(f"stored config {case}: server peak +{growth / MIB:.0f} MiB")
    assert growth < 300 * MIB, f"the server grew {growth / MIB:.0f} MiB"  # before: 10.4 GiB for "wide"
    assert _outputs(comfy_env) == before
    _serves_the_next_prompt(comfy_env)


@pytest.mark.timeout(300)
def test_a_huge_face_range_is_refused_without_holding_memory(comfy_env):
    _serves_the_next_prompt(comfy_env)  # the faces' own memory is warm before measuring
    rss = psutil.Process(comfy_env.proc.pid).memory_info().rss
    entry, growth = _peak_growth(comfy_env, _faces_prompt(PHOTO_MULTI, "195,180,310,300;410,305,505,440",
                                                          indices="1-20000000"))
    assert _error(entry) == ("FOMSelectFaces: FOMSelectFaces: face index 20000000 is out of range; there are 2 faces "
                             "(numbered 1..2)")
    held = psutil.Process(comfy_env.proc.pid).memory_info().rss - rss
    print(f"face range 1-20000000: server peak +{growth / MIB:.0f} MiB, held afterwards +{held / MIB:.0f} MiB")
    assert growth < 200 * MIB and held < 100 * MIB, (growth / MIB, held / MIB)  # before: about 1 GB held
    _serves_the_next_prompt(comfy_env)


@pytest.mark.timeout(300)
def test_a_box_far_larger_than_the_photo_is_cut_to_it(comfy_env):
    """A 3000 px box on the 1200x900 painting: before, a 6000 px window and 4 GB in ComfyUI."""
    entry, growth = _peak_growth(comfy_env, _faces_prompt(PHOTO_MULTI, "0,0,3000,3000"))
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    print(f"3000 px box on 1200x900: server peak +{growth / MIB:.0f} MiB")
    assert growth < 600 * MIB, f"the server grew {growth / MIB:.0f} MiB"
    _serves_the_next_prompt(comfy_env)


@pytest.fixture(scope="module")
def fast_motion(comfy_env) -> str:
    import torch

    name = "hostile-fast.safetensors"
    path = comfy_env.base_dir / "models" / "fom_motion" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"value": torch.zeros(4, 10, 2), "jacobian": torch.eye(2).expand(4, 10, 2, 2).contiguous()}, str(path),
              metadata={"format": "fom_motion", "version": "1", "fps": "1e9", "name": "x", "frames": "4",
                        "keypoints": "10"})
    return name


@pytest.mark.timeout(300)
def test_a_motion_file_claiming_a_billion_fps_is_one_node_error(comfy_env, fast_motion):
    before = _outputs(comfy_env)
    prompt = _keypoints_prompt(CHECKPOINT, ["1", 0], "hostile/motion")
    prompt["4"] = {"class_type": "FOMLoadMotion", "inputs": {"model": ["3", 0], "motion": fast_motion, "smooth": 0}}
    message = _error(comfy_env.run(prompt, timeout=240))
    assert message.startswith("FOMLoadMotion: ") and "is damaged (its frame rate must be above 0 and at most 240 " \
        "frames per second, got 1e9)" in message, message
    assert _outputs(comfy_env) == before
    _serves_the_next_prompt(comfy_env)


@pytest.fixture(scope="module")
def broken_videos(comfy_env) -> dict:
    """In input/: the first third of a real clip (cut mid-file) and a text file named .mp4."""
    folder = comfy_env.base_dir / "input"
    data = (folder / DRIVER_CROPPED).read_bytes()
    (folder / "hostile-cut.mp4").write_bytes(data[: len(data) // 3])
    (folder / "hostile-text.mp4").write_text("this is not a video, only its name says so\n" * 50)
    return {"cut": "hostile-cut.mp4", "text": "hostile-text.mp4"}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", ["cut", "text"])
def test_a_broken_file_through_load_video_is_our_one_line(comfy_env, broken_videos, case):
    before = _outputs(comfy_env)
    prompt = _keypoints_prompt(CHECKPOINT, ["2", 0], "hostile/video")
    prompt["2"] = {"class_type": "LoadVideo", "inputs": {"file": broken_videos[case]}}
    message = _error(comfy_env.run(prompt, timeout=240))
    assert "not a video file ffmpeg can read" in message and broken_videos[case] in message, message
    assert "InvalidDataError" not in message and "av.error" not in message
    assert _outputs(comfy_env) == before
    _serves_the_next_prompt(comfy_env)


@pytest.mark.timeout(300)
def test_a_driving_window_far_larger_than_the_frames_is_cut_to_them(comfy_env):
    """Before, FOM Crop Driving Video padded the typed window as is: 200000 px a side is 480 GB a frame."""
    prompt = _keypoints_prompt(CHECKPOINT, ["6", 0], "hostile/window")
    prompt["2"] = {"class_type": "LoadVideo", "inputs": {"file": DRIVER_CROPPED}}
    prompt["6"] = {"class_type": "FOMCropDrivingVideo", "inputs": {"driving": ["2", 0], "size": 256, "scale": 1.8,
                                                                  "box": "-100000,-100000,100000,100000",
                                                                  "detect_every": 0}}
    entry, growth = _peak_growth(comfy_env, prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    print(f"200000 px driving window: server peak +{growth / MIB:.0f} MiB")
    assert growth < 600 * MIB, f"the server grew {growth / MIB:.0f} MiB"
