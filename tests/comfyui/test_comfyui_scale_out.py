"""Many ComfyUI servers behind a queue (README "Many jobs"): the same API-format workflow sent to any
server gives the same video. A motion file saved once (by the command line, from the driving clip)
is put in each server's models/fom_motion/ (a shared mount in a real deployment); the shipped
single_face API workflow, its video driver replaced by FOM Load Motion, gives the same frames on
every host, and the same frames again on one server after another prompt and a memory free (our
nodes keep nothing between prompts that changes a result)."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
from assets import CHECKPOINT, DRIVER_CROPPED, PHOTO_FACE, make_clip, write_fomm_checkpoint
from comfy_host import execution_error, shared_dir
from kit import REPO
from video_checks import read_frames
from workflow_files import api

MOTION = "scale_out_dv.safetensors"
FRAMES_BY_HOST: dict[str, np.ndarray] = {}  # what each host made of the same prompt, this session


@pytest.fixture(scope="module")
def motion_file(tmp_path_factory):
    """Saved once for every host: the command line's --save_motion with the checkpoint the hosts have
    (the same generated vox-cpk.pdparams, tests/comfyui/assets.py)."""
    folder = tmp_path_factory.mktemp("scale_out")
    write_fomm_checkpoint(folder / CHECKPOINT)
    make_clip(shared_dir() / "media" / DRIVER_CROPPED, folder / DRIVER_CROPPED, frames=12)
    res = subprocess.run([sys.executable, "-m", "fom_pipeline", "--source_image", shared_dir() / "media" / PHOTO_FACE,
                          "--driving_video", folder / DRIVER_CROPPED, "--weight_path", folder / CHECKPOINT,
                          "--faces", "48,40,208,216", "--save_motion", folder / MOTION, "--output", folder,
                          "--cpu", "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    return folder / MOTION


def _prompt(prefix: str, smooth: int = 0) -> dict:
    """The shipped single_face API workflow driven by the motion file instead of its video."""
    prompt = copy.deepcopy(api("single_face"))
    for node in ("2", "5", "6"):  # LoadVideo -> FOMCropDrivingVideo -> FOMExtractKeypoints
        del prompt[node]
    prompt["6"] = {"class_type": "FOMLoadMotion", "inputs": {"model": ["4", 0], "motion": MOTION, "smooth": smooth}}
    prompt["4"]["inputs"]["device"] = "cpu"
    prompt["9"]["inputs"]["filename_prefix"] = prefix
    return prompt


def _frames(server, prompt: dict) -> np.ndarray:
    entry = server.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    items = [i for i in entry["outputs"]["9"]["images"] if i["filename"].endswith(".mp4")]
    assert len(items) == 1, entry["outputs"]
    return read_frames(server.output_path(items[0])).astype(np.int16)


@pytest.mark.timeout(600)
def test_a_motion_file_drives_the_same_workflow_to_the_same_frames_on_any_server(comfy_env, comfy_host, motion_file):
    target = comfy_env.base_dir / "models" / "fom_motion" / MOTION
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(motion_file.read_bytes())
    first = _frames(comfy_env, _prompt("scale_out/first"))
    assert len(first) == 12

    other = _frames(comfy_env, _prompt("scale_out/other", smooth=6))  # another job in between
    assert np.abs(other - first).mean() > 0.05  # (it really is another result)
    r = comfy_env.session.post(f"{comfy_env.url}/free", json={"unload_models": True, "free_memory": True}, timeout=30)
    r.raise_for_status()
    again = _frames(comfy_env, _prompt("scale_out/again"))
    assert np.array_equal(again, first)  # nothing kept from the prompts before changes the result

    for host, frames in FRAMES_BY_HOST.items():  # the other host(s) of this session
        assert frames.shape == first.shape
        assert np.abs(frames - first).max() <= 1, f"{comfy_host.name} differs from {host}"
    FRAMES_BY_HOST[comfy_host.name] = first
