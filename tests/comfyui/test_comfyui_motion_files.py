"""Motion files in the real host, over HTTP: FOM Save Motion writes the driving keypoints into the
output folder in one prompt; the file is uploaded the way the editor uploads (POST /upload/image, into
input/); FOM Load Motion lists it and, in another prompt without the driving video, gives the same
animation frame for frame (with sound from Load Audio when connected). Files in models/fom_motion/ are
listed too; a foreign .safetensors in input/ is not; a broken one fails with one line naming it."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from assets import CHECKPOINT, DRIVER_CROPPED, PHOTO_FACE, probe
from comfy_host import execution_error, status_messages
from safetensors.torch import save_file
from video_checks import read_frames

from fom_pipeline.motion_file import load_motion

PREFIX = "fom_motion/test_dv"


def _animation(driving_keypoints: list, video_prefix: str) -> dict:
    """Photo -> Transfer Motion (driven by ``driving_keypoints``) -> one face as a VIDEO -> Save Video."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": PHOTO_FACE}},
        "3": {"class_type": "FOMLoadModel", "inputs": {"ckpt_name": CHECKPOINT, "device": "cpu", "precision": "fp32",
                                                      "warp_border": "auto", "image_size": 0}},
        "6": {"class_type": "FOMTransferMotion", "inputs": {"model": ["3", 0], "source": ["1", 0],
                                                           "driving_keypoints": driving_keypoints, "relative": True,
                                                           "relative_jacobian": "auto", "adapt_scale": True,
                                                           "reference_frame": "first", "reference_index": 0,
                                                           "batch_size": 8}},
        "7": {"class_type": "FOMAnimationToVideo", "inputs": {"animation": ["6", 0], "face": 1}},
        "8": {"class_type": "SaveVideo", "inputs": {"video": ["7", 0], "filename_prefix": video_prefix,
                                                   "format": "auto", "codec": "auto"}},
    }


def _video(server, entry):
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    items = [i for i in entry["outputs"]["8"]["images"] if i["filename"].endswith(".mp4")]
    assert len(items) == 1, entry["outputs"]
    return server.output_path(items[0])


def _upload(server, path) -> str:
    """POST /upload/image with any file (what the editor's upload button does); returns its name in input/."""
    with open(path, "rb") as f:
        r = server.session.post(f"{server.url}/upload/image", files={"image": (path.name, f)},
                                data={"overwrite": "true", "type": "input"}, timeout=30)
    r.raise_for_status()
    return r.json()["name"]


def _listed(server) -> list:
    info = server.get_json("/object_info/FOMLoadMotion")["FOMLoadMotion"]
    return info["input"]["required"]["motion"][1]["options"]


@pytest.fixture(scope="module")
def saved(comfy_env):
    """Prompt 1: keypoints of the driving video (smooth 3) saved as a motion file and animated."""
    prompt = _animation(["4", 0], "motion_test/from_video")
    prompt["2"] = {"class_type": "LoadVideo", "inputs": {"file": DRIVER_CROPPED}}
    prompt["4"] = {"class_type": "FOMExtractKeypoints", "inputs": {"model": ["3", 0], "driving": ["2", 0],
                                                                  "batch_size": 8, "smooth": 3}}
    prompt["5"] = {"class_type": "FOMSaveMotion", "inputs": {"keypoints": ["4", 0], "filename_prefix": PREFIX}}
    entry = comfy_env.run(prompt, timeout=240)
    video = _video(comfy_env, entry)
    files = entry["outputs"]["5"]["motion_files"]
    assert len(files) == 1 and files[0]["subfolder"] == "fom_motion", files
    assert files[0]["filename"].startswith("test_dv_") and files[0]["filename"].endswith("_.safetensors")
    return {"video": video, "motion": comfy_env.output_path(files[0]), "info": files[0]}


def test_save_motion_writes_a_motion_file_into_the_output_folder(comfy_env, saved):
    motion = load_motion(saved["motion"])
    frames = probe(saved["video"])["frames"]
    assert len(motion) == frames == saved["info"]["frames"]
    assert motion.name == DRIVER_CROPPED == saved["info"]["clip"]
    assert motion.fps == pytest.approx(probe(comfy_env.base_dir / "input" / DRIVER_CROPPED)["fps"])
    assert saved["motion"].stat().st_size < 400 * frames  # keypoints and jacobians, no pixels


def _load_prompt(name: str, video_prefix: str, **load_inputs) -> dict:
    load = {"class_type": "FOMLoadMotion", "inputs": {"model": ["3", 0], "motion": name, "smooth": 0, **load_inputs}}
    return {**_animation(["9", 0], video_prefix), "9": load}


@pytest.fixture(scope="module")
def uploaded(comfy_env, saved) -> str:
    name = _upload(comfy_env, saved["motion"])
    assert name in _listed(comfy_env)
    return name


@pytest.mark.timeout(300)
def test_load_motion_in_another_prompt_gives_the_same_video(comfy_env, saved, uploaded):
    from_file = _video(comfy_env, comfy_env.run(_load_prompt(uploaded, "motion_test/from_file"), timeout=240))
    original = read_frames(saved["video"]).astype(np.int16)
    frames = read_frames(from_file).astype(np.int16)
    assert frames.shape == original.shape
    assert np.abs(frames - original).max() <= 1  # the same motion: the same frames (h264 aside)
    assert probe(from_file)["audio"] is False  # a motion file has no sound of its own


@pytest.mark.hosts("0.33")
@pytest.mark.timeout(300)
def test_load_motion_with_sound_and_more_smoothing(comfy_env, saved, uploaded):
    """Only on 0.33: core Load Audio needs torchaudio, which only that test host has."""
    prompt = _load_prompt(uploaded, "motion_test/from_file_sound", smooth=6, audio=["10", 0])
    prompt["10"] = {"class_type": "LoadAudio", "inputs": {"audio": DRIVER_CROPPED}}
    smoothed = _video(comfy_env, comfy_env.run(prompt, timeout=240))
    assert probe(smoothed)["audio"] is True
    original = read_frames(saved["video"]).astype(np.int16)
    assert np.abs(read_frames(smoothed).astype(np.int16) - original).mean() > 0.05  # more smoothing shows


def test_load_motion_lists_motion_files_only_and_refuses_a_broken_one(comfy_env, saved):
    folder = comfy_env.base_dir / "models" / "fom_motion"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shared_dance.safetensors").write_bytes(saved["motion"].read_bytes())
    (folder / "broken.safetensors").write_bytes(saved["motion"].read_bytes()[:-50])
    save_file({"weight": torch.zeros(3)}, str(comfy_env.base_dir / "input" / "not_motion.safetensors"))
    listed = _listed(comfy_env)
    assert "shared_dance.safetensors" in listed and "broken.safetensors" in listed
    assert "not_motion.safetensors" not in listed

    entry = comfy_env.run(_load_prompt("broken.safetensors", "motion_test/broken"), timeout=120)
    error = execution_error(entry)
    assert entry["status"]["status_str"] == "error" and error["node_type"] == "FOMLoadMotion"
    message = error["exception_message"].strip()
    assert "\n" not in message and message.startswith("FOMLoadMotion: motion file ")
    assert "broken.safetensors is damaged" in message
    assert "8" not in entry["outputs"]  # nothing was rendered from it


@pytest.mark.timeout(400)
def test_load_motion_reads_a_file_replaced_under_the_same_name(comfy_env, saved):
    """FOM Load Motion gives ComfyUI its file's identity (fingerprint_inputs: path, modification time and
    size, like the loaders): a motion file replaced under the same name is read again, not taken from
    ComfyUI's cache."""
    from fom_pipeline.keypoints import Keypoints
    from fom_pipeline.motion_file import save_motion
    from fom_pipeline.pipeline import DrivingKeypoints

    folder = comfy_env.base_dir / "models" / "fom_motion"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "replaced.safetensors"
    path.write_bytes(saved["motion"].read_bytes())
    first = comfy_env.run(_load_prompt(path.name, "motion_test/replaced_before"), timeout=240)
    before = read_frames(_video(comfy_env, first)).astype(np.int16)

    motion = load_motion(saved["motion"])  # the same motion played backwards: other frames, same model
    kp = motion.keypoints
    backwards = DrivingKeypoints(Keypoints(kp.value.flip(0), None if kp.jacobian is None else kp.jacobian.flip(0)),
                                 motion.fps, None, motion.name, motion.detector)
    mtime = path.stat().st_mtime_ns
    side = save_motion(folder.parent / "replacement.safetensors", backwards, overwrite=True)
    os.replace(side, path)
    os.utime(path, ns=(mtime + 5_000_000_000, mtime + 5_000_000_000))

    second = comfy_env.run(_load_prompt(path.name, "motion_test/replaced_after"), timeout=240)
    after = read_frames(_video(comfy_env, second)).astype(np.int16)
    cached = {n for event, data in status_messages(second) if event == "execution_cached" for n in data["nodes"]}
    assert "9" not in cached, "ComfyUI kept FOM Load Motion's output for the replaced file"
    assert after.shape == before.shape and np.abs(after - before).mean() > 0.5, "the old motion was used"
