"""A variable-rate phone-like clip through the real host's Load Video: the animation plays in real time
at the clip's average rate, or at the rate FOM Extract Keypoints' ``fps`` input asks for, and Save
Video gets every frame."""

from __future__ import annotations

import assets
import pytest
from comfy_host import execution_error

from tests.footage import make_clip

VFR = [(15, 30.0), (5, 10.0), (12, 20.0)]  # 32 frames in 1.6 s: 20 fps on average
CLIP = "fom_vfr_phone.mp4"


def _prompt(fps: float | None, prefix: str) -> dict:
    """Load Video -> keypoints -> the photo (already a face crop) animated -> Save Video."""
    keypoints = {"model": ["2", 0], "driving": ["3", 0], "batch_size": 16}
    if fps is not None:
        keypoints["fps"] = fps
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": assets.PHOTO_FACE}},
        "2": {"class_type": "FOMLoadModel", "inputs": {"ckpt_name": assets.CHECKPOINT, "device": "cpu",
                                                      "precision": "fp32", "warp_border": "auto", "image_size": 0}},
        "3": {"class_type": "LoadVideo", "inputs": {"file": CLIP}},
        "4": {"class_type": "FOMExtractKeypoints", "inputs": keypoints},
        "5": {"class_type": "FOMTransferMotion", "inputs": {
            "model": ["2", 0], "source": ["1", 0], "driving_keypoints": ["4", 0], "relative": True,
            "relative_jacobian": "auto", "adapt_scale": True, "reference_frame": "first", "reference_index": 0,
            "batch_size": 8}},
        "6": {"class_type": "FOMAnimationToVideo", "inputs": {"animation": ["5", 0], "face": 1}},
        "7": {"class_type": "SaveVideo", "inputs": {"video": ["6", 0], "filename_prefix": prefix, "format": "auto",
                                                   "codec": "auto"}},
    }


def _saved(server, entry: dict):
    items = [i for i in entry["outputs"]["7"]["images"] if i["filename"].endswith(".mp4")]
    assert len(items) == 1, entry["outputs"]
    return server.output_path(items[0])


@pytest.mark.timeout(400)
@pytest.mark.parametrize("fps, frames, rate", [(None, 32, 20.0), (10.0, 16, 10.0)])
def test_variable_rate_clip_through_load_video_plays_in_real_time(comfy_env, fps, frames, rate):
    clip = comfy_env.base_dir / "input" / CLIP
    if not clip.exists():
        make_clip(clip, VFR)
    entry = comfy_env.run(_prompt(fps, f"fom/vfr_{rate:g}"), timeout=300)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    info = assets.probe(_saved(comfy_env, entry))  # decoded with PyAV, ComfyUI's own reader
    assert info["frames"] == frames  # 1.6 s of motion, not 2.4x slow motion of duplicated frames
    assert info["fps"] == pytest.approx(rate, rel=1e-3)
    assert info["frames"] / info["fps"] == pytest.approx(1.6, abs=1 / rate)


PHONE = "fom_phone_hevc.mp4"


@pytest.mark.timeout(400)
def test_phone_clip_through_load_video_keeps_its_length_every_frame_and_its_sound(comfy_env):
    """A phone clip as users have it: variable rate, HEVC 10-bit stored turned (display matrix), AAC
    that ends a little before the picture. The animation keeps every frame of its 1.6 s, at 20 fps,
    and the sound: a shorter track must not cut the video's last frames."""
    clip = comfy_env.base_dir / "input" / PHONE
    if not clip.exists():
        make_clip(clip, VFR, "hevc10", audio_seconds=1.5, rotation=90)
    prompt = _prompt(None, "fom/phone")
    prompt["3"]["inputs"]["file"] = PHONE
    entry = comfy_env.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    info = assets.probe(_saved(comfy_env, entry))
    assert info["frames"] == 32
    assert info["fps"] == pytest.approx(20.0, rel=1e-3)
    assert info["audio"], "the phone clip's sound was dropped"
