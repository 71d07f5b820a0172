"""Motion files: a real round trip through .safetensors, the same animation from the file as from the
video, and one clear line (no code run) for every broken, foreign or pickled file."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
import torch
from kit import CodePayload
from safetensors.torch import save_file

from fom_pipeline import pipeline as P
from fom_pipeline.errors import InputError
from fom_pipeline.motion_file import check_motion_model, check_motion_output, load_motion, save_motion
from fom_pipeline.streams import FrameArray
from fom_pipeline.testing import random_model, tiny_config


@pytest.fixture(scope="module")
def driving(tiny_model):
    frames = np.random.default_rng(0).uniform(0, 1, (12, 64, 64, 3)).astype(np.float32)
    kp = P.driving_keypoints(tiny_model, FrameArray(frames, fps=29.97))
    kp.name = "dance.mp4"
    return kp


@pytest.fixture()
def saved(tmp_path, driving):
    return save_motion(tmp_path / "dance.safetensors", driving)


def test_round_trip_keeps_everything(saved, driving):
    back = load_motion(saved)
    assert torch.equal(back.keypoints.value, driving.keypoints.value)
    assert torch.equal(back.keypoints.jacobian, driving.keypoints.jacobian)
    assert torch.equal(back.detector, driving.detector)
    assert back.fps == pytest.approx(29.97) and back.name == "dance.mp4" and back.audio is None
    raw = saved.read_bytes()  # a plain safetensors file: 8-byte length, JSON header, raw tensors
    (length,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8 : 8 + length])["__metadata__"]
    assert meta == {"format": "fom_motion", "version": "1", "fps": "29.97", "name": "dance.mp4", "frames": "12",
                    "keypoints": "10"}


def test_300_frames_is_small(tmp_path):
    value = torch.rand(300, 10, 2) * 2 - 1
    motion = P.DrivingKeypoints(P.Keypoints(value, torch.rand(300, 10, 2, 2)), 25.0, name="clip.mp4",
                                detector=torch.zeros(10, 2))
    size = save_motion(tmp_path / "clip.safetensors", motion).stat().st_size
    assert 300 * 240 < size < 300 * 240 + 1024  # float32 keypoints + jacobians, a small header
    assert torch.equal(load_motion(tmp_path / "clip.safetensors").keypoints.value, value)


def test_animation_from_the_file_equals_the_one_from_the_video(tiny_model, saved, driving):
    crop = np.random.default_rng(1).uniform(0, 1, (1, 256, 256, 3)).astype(np.float32)
    motion = load_motion(saved)
    check_motion_model(motion, tiny_model, str(saved))
    for smooth in (0, 3):
        a = P.FaceAnimation(tiny_model, crop, driving.smoothed(smooth), batch_size=5).frames()
        b = P.FaceAnimation(tiny_model, crop, motion.smoothed(smooth), batch_size=5).frames()
        assert np.array_equal(a, b)


def test_same_weights_in_another_precision_pass_another_model_is_refused(saved, driving):
    motion = load_motion(saved)
    check_motion_model(motion, random_model(seed=0, precision="bf16"), "m")
    with pytest.raises(InputError, match=r"^m was made by another model's keypoint detector .* load that model"):
        check_motion_model(motion, random_model(seed=1), "m")
    with pytest.raises(InputError, match="^m has 10 keypoints per frame but the model has 15"):
        check_motion_model(motion, random_model(tiny_config(num_kp=15)), "m")


def test_saving_refuses_other_names_and_existing_files(tmp_path, saved, driving):
    with pytest.raises(InputError, match=r"must end in \.safetensors, e\.g\. .*motion\.safetensors"):
        check_motion_output(tmp_path / "motion.pkl")
    with pytest.raises(InputError, match=r"already exists: .*\(pass overwrite=True to replace it\)") as info:
        save_motion(saved, driving)
    assert info.value.worded("cli").endswith("(pass --overwrite to replace it)")
    save_motion(saved, driving.smoothed(3), overwrite=True)
    assert not torch.equal(load_motion(saved).keypoints.value, driving.keypoints.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dance.safetensors"]  # no temporary file left


def _broken_files(tmp, saved, tiny_checkpoint) -> dict:
    raw = saved.read_bytes()
    files = {}

    def put(name, data):
        files[name] = tmp / name
        files[name].write_bytes(data)

    put("text.safetensors", b"hello, this is not a motion file at all")
    put("empty.safetensors", b"")
    put("cut.safetensors", raw[: len(raw) - 100])
    with open(tmp / "payload.safetensors", "wb") as f:
        pickle.dump({"value": CodePayload(tmp / "ran", call="open")}, f)
    files["payload.safetensors"] = tmp / "payload.safetensors"
    torch.save({"value": torch.zeros(3, 10, 2)}, tmp / "torch.safetensors")
    files["torch.safetensors"] = tmp / "torch.safetensors"
    files["weights"] = tiny_checkpoint

    def motion(name, tensors, **meta):
        metadata = {"format": "fom_motion", "version": "1", "fps": "25.0", "name": "x"}
        save_file(tensors, str(tmp / name), metadata={**metadata, **meta})
        files[name] = tmp / name

    good = {"value": torch.zeros(4, 10, 2), "jacobian": torch.zeros(4, 10, 2, 2)}
    motion("newer.safetensors", good, version="7")
    motion("no_fps.safetensors", good, fps="fast")
    motion("zero_fps.safetensors", good, fps="0")
    motion("fast_fps.safetensors", good, fps="1e9")
    motion("huge_fps.safetensors", good, fps="1e300")
    motion("no_value.safetensors", {"jacobian": good["jacobian"]})
    motion("bad_jacobian.safetensors", {"value": good["value"], "jacobian": torch.zeros(3, 10, 2, 2)})
    motion("nan.safetensors", {"value": torch.full((4, 10, 2), float("nan"))})
    motion("far.safetensors", {"value": torch.full((4, 10, 2), 1e30)})
    motion("steep.safetensors", {"value": good["value"], "jacobian": torch.full((4, 10, 2, 2), -5e4)})
    return files


EXPECTED = {
    "text.safetensors": "is not a motion file (not a .safetensors file; make one with --save_motion",
    "empty.safetensors": "is not a motion file (not a .safetensors file",
    "cut.safetensors": "is damaged (",
    "payload.safetensors": "is a pickle (or torch.save file), not a motion file; pickles are never loaded",
    "torch.safetensors": "is a pickle (or torch.save file), not a motion file",
    "weights": "is a .safetensors file but not a motion file (model weights?)",
    "newer.safetensors": "is format version 7, newer than this pack reads (1); update the pack",
    "no_fps.safetensors": "is damaged (unreadable version or fps)",
    "zero_fps.safetensors": "is damaged (its frame rate must be above 0 and at most 240 frames per second, got 0)",
    "fast_fps.safetensors": "is damaged (its frame rate must be above 0 and at most 240 frames per second, got 1e9)",
    "huge_fps.safetensors": "is damaged (its frame rate must be above 0 and at most 240 frames per second, got 1e300)",
    "no_value.safetensors": "is damaged (no keypoints [frames, K, 2])",
    "bad_jacobian.safetensors": "is damaged (jacobians (3, 10, 2, 2) do not match keypoints (4, 10, 2))",
    "nan.safetensors": "is damaged (keypoints that are not finite numbers)",
    "far.safetensors": "is damaged (keypoints as large as 1e+30; a model's lie within 2)",
    "steep.safetensors": "is damaged (jacobians as large as 5e+04; a model's lie within 1000)",
}


def test_broken_foreign_and_pickled_files_give_one_line_naming_them(tmp_path, saved, tiny_checkpoint):
    files = _broken_files(tmp_path, saved, tiny_checkpoint)
    assert sorted(files) == sorted(EXPECTED)
    for name, path in files.items():
        with pytest.raises(InputError) as err:
            load_motion(path)
        message = str(err.value)
        assert "\n" not in message and str(path) in message and EXPECTED[name] in message, (name, message)
    assert not (tmp_path / "ran").exists(), "the pickle's code ran"
    with pytest.raises(InputError, match="^motion file not found: .*nope.safetensors \\(check the path\\)"):
        load_motion(tmp_path / "nope.safetensors")
    with pytest.raises(InputError, match="^motion file is a folder"):
        load_motion(tmp_path)
