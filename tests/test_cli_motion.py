"""The command line with --smooth, --save_motion, --driving_motion and --audio, as real processes on
real media: a motion saved while animating drives the same video again without the driving clip;
broken, foreign, pickled or other-model files give one line and nothing runs from them."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kit import REPO, CodePayload

from fom_pipeline.motion_file import load_motion
from fom_pipeline.video import ffmpeg_exe, iter_video_frames, probe

FACE = ["--faces", "48,40,208,216"]


def cli(*args, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fom_pipeline", *map(str, args)], cwd=REPO,
                          env={**os.environ, "FOM_ALLOW_DOWNLOAD": "0"}, capture_output=True, text=True,
                          timeout=timeout)


def frames_of(path: Path) -> np.ndarray:
    return np.concatenate(list(iter_video_frames(path))).astype(int)


@pytest.fixture(scope="module")
def clips(media_dir, tmp_path_factory) -> dict:
    """Two seconds of fom_dv.mp4 with a tone as its audio, and a separate tone file."""
    folder = tmp_path_factory.mktemp("clips")
    talk, tone = folder / "talk.mp4", folder / "tone.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(media_dir / "fom_dv.mp4"), "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=5", "-t", "2", "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
                    "-crf", "18", "-c:a", "aac", str(talk)], check=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:duration=3",
                    "-c:a", "aac", str(tone)], check=True)
    return {"talk": talk, "tone": tone, "photo": media_dir / "fom_source_image.png"}


@pytest.fixture(scope="module")
def from_video(clips, tiny_checkpoint, tmp_path_factory) -> dict:
    """Animate from the video with smoothing, saving its motion on the way."""
    out = tmp_path_factory.mktemp("from_video")
    motion = out / "talk_motion.safetensors"
    res = cli("--source_image", clips["photo"], "--driving_video", clips["talk"], "--weight_path", tiny_checkpoint,
              *FACE, "--relative", "--adapt_scale", "--max_frames", 9, "--batch_size", 3, "--smooth", 4,
              "--save_motion", motion, "--output", out)
    assert res.returncode == 0, res.stderr
    return {"video": out / "result.mp4", "motion": motion, "stderr": res.stderr, "stdout": res.stdout}


def test_save_motion_while_animating(from_video, clips, tiny_checkpoint, tmp_path):
    """The file holds the motion the run used: the clip's keypoints after --smooth 4."""
    raw = tmp_path / "raw.safetensors"
    res = cli("--source_image", clips["photo"], "--driving_video", clips["talk"], "--weight_path", tiny_checkpoint,
              *FACE, "--max_frames", 9, "--save_motion", raw, "--output", tmp_path, "--quiet")
    assert res.returncode == 0, res.stderr
    motion = load_motion(from_video["motion"])
    expected = load_motion(raw).smoothed(4).keypoints
    assert np.allclose(motion.keypoints.value.numpy(), expected.value.numpy(), atol=1e-6)
    assert np.allclose(motion.keypoints.jacobian.numpy(), expected.jacobian.numpy(), atol=1e-6)
    assert not np.allclose(motion.keypoints.value.numpy(), load_motion(raw).keypoints.value.numpy(), atol=1e-4)
    assert len(motion) == 9 and motion.fps == pytest.approx(30.0) and motion.name == "talk.mp4"
    assert motion.keypoints.jacobian.shape == (9, 10, 2, 2) and motion.detector.shape == (10, 2)
    assert f"motion saved: {from_video['motion']} (9 frames, " in from_video["stderr"]
    assert "animated 1 face, 9 frames" in from_video["stdout"] and "audio copy" in from_video["stdout"]


def test_motion_file_drives_the_same_video_without_the_clip(from_video, clips, tiny_checkpoint, tmp_path):
    """Same flags, the motion file instead of the video: the same frames (the file holds the motion
    as used, smoothed); without --audio the result is silent; --smooth on top changes the motion."""
    base = ["--source_image", clips["photo"], "--driving_motion", from_video["motion"], "--weight_path",
            tiny_checkpoint, *FACE, "--relative", "--adapt_scale", "--batch_size", 3]
    res = cli(*base, "--output", tmp_path / "same")
    assert res.returncode == 0, res.stderr
    assert "animated 1 face, 9 frames" in res.stdout
    same = tmp_path / "same" / "result.mp4"
    assert probe(same)["audio"] is None and probe(same)["video"]["fps"] == pytest.approx(30.0)
    original = frames_of(from_video["video"])
    assert np.abs(frames_of(same) - original).max() <= 1

    res = cli(*base, "--smooth", 8, "--output", tmp_path / "more")
    assert res.returncode == 0, res.stderr
    # smoothing shows (the random test model moves its faces little, but clearly more than nothing)
    assert np.abs(frames_of(tmp_path / "more" / "result.mp4") - original).mean() > 0.05


def test_motion_file_with_audio_and_a_cut(from_video, clips, tiny_checkpoint, tmp_path):
    res = cli("--source_image", clips["photo"], "--driving_motion", from_video["motion"], "--weight_path",
              tiny_checkpoint, *FACE, "--audio", clips["tone"], "--start", 0.1, "--max_frames", 5,
              "--output", tmp_path, "--quiet")
    assert res.returncode == 0, res.stderr
    assert "animated 1 face, 5 frames" in res.stdout and "audio copy" in res.stdout
    info = probe(tmp_path / "result.mp4")
    assert info["audio"] == {"codec": "aac"} and info["duration"] == pytest.approx(5 / 30, abs=0.06)
    assert res.stderr == ""


@pytest.fixture(scope="module")
def bad(tmp_path_factory, clips, tiny_checkpoint, from_video) -> dict:
    from fom_pipeline.testing import random_model

    folder = tmp_path_factory.mktemp("bad")
    broken = folder / "broken.safetensors"
    broken.write_bytes(from_video["motion"].read_bytes()[:-60])
    pickled = folder / "motion.safetensors"
    with open(pickled, "wb") as f:
        pickle.dump(CodePayload(folder / "ran", call="open"), f)
    other = folder / "other.safetensors"
    random_model(seed=1).save(other)
    (folder / "exists.safetensors").write_bytes(b"keep")
    return {"folder": folder, "broken": broken, "pickled": pickled, "other": other}


def _cases(clips, ckpt, motion, bad) -> dict:
    folder = bad["folder"]
    base = ["--source_image", clips["photo"], "--weight_path", ckpt, *FACE, "--output", folder / "out"]
    with_motion = [*base, "--driving_motion"]
    return {
        "broken": ([*with_motion, bad["broken"]], f"motion file {bad['broken']} is damaged ("),
        "pickle": ([*with_motion, bad["pickled"]], f"{bad['pickled']} is a pickle (or torch.save file), not a "
                                                   "motion file; pickles are never loaded"),
        "weights": ([*with_motion, ckpt], f"{ckpt} is a .safetensors file but not a motion file (model weights?)"),
        "other model": ([*base, "--weight_path", bad["other"], "--driving_motion", motion],
                        f"--driving_motion {motion} was made by another model's keypoint detector"),
        "missing": ([*with_motion, folder / "nope.safetensors"], "motion file not found:"),
        "neither": (base, "the following arguments are required: --driving_video (or --driving_motion FILE)"),
        "both": ([*with_motion, motion, "--driving_video", clips["talk"]],
                 "give --driving_video or --driving_motion, not both"),
        "crop driving": ([*with_motion, motion, "--crop_driving"], "--crop_driving needs --driving_video"),
        "audio and no audio": ([*with_motion, motion, "--audio", clips["tone"], "--no_audio"],
                               "--audio and --no_audio contradict each other"),
        "silent audio": ([*with_motion, motion, "--audio", bad["broken"]], "has no audio track ffmpeg can read"),
        "missing audio": ([*with_motion, motion, "--audio", folder / "a.wav"], "audio file not found:"),
        "start past the end": ([*with_motion, motion, "--start", 2], "--start 2 s is past the end of the motion file"),
        "save exists": ([*base, "--driving_video", clips["talk"], "--save_motion", folder / "exists.safetensors"],
                        "--save_motion already exists:"),
        "save suffix": ([*base, "--driving_video", clips["talk"], "--save_motion", folder / "m.json"],
                        "--save_motion " + str(folder / "m.json") + " must end in .safetensors"),
        "negative smooth": ([*with_motion, motion, "--smooth", "-2"], "argument --smooth: must be 0 or more"),
    }


def test_bad_motion_inputs_give_one_line_and_nothing_runs(clips, tiny_checkpoint, from_video, bad, capsys):
    from fom_pipeline.cli import main

    for name, (args, expected) in _cases(clips, tiny_checkpoint, from_video["motion"], bad).items():
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exit_:
            rc = exit_.code
        err = capsys.readouterr()
        lines = [line for line in err.err.splitlines() if line.strip()]
        assert rc in (1, 2) and len(lines) == 1 and lines[0].startswith("error: "), (name, err.err)
        assert expected in lines[0], (name, lines[0])
        out = bad["folder"] / "out"
        assert err.out == "" and (not out.exists() or os.listdir(out) == []), name
    assert not (bad["folder"] / "ran").exists(), "the pickle's code ran"
    assert (bad["folder"] / "exists.safetensors").read_bytes() == b"keep"


def test_pickle_refused_by_the_real_process(clips, tiny_checkpoint, bad, tmp_path):
    res = cli("--source_image", clips["photo"], "--weight_path", tiny_checkpoint, *FACE, "--driving_motion",
              bad["pickled"], "--output", tmp_path / "out")
    assert res.returncode == 1 and res.stdout == "" and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [f"error: {bad['pickled']} is a pickle (or torch.save file), not a "
                                               "motion file; pickles are never loaded because they can run code "
                                               "(make one with --save_motion or the FOM Save Motion node)"]
    assert os.listdir(tmp_path / "out") == [] and not (bad["folder"] / "ran").exists()


@pytest.fixture(scope="module")
def jittery(tmp_path_factory) -> dict:
    """The tracking model, a still marked face as the photo and a driver whose marks sway 12 px every
    30 frames (1.2 s at 25 fps) with 1.5 px of per-frame jitter, written as h264."""
    from fom_pipeline.testing import FACE_MARKS, marked_face, tracking_model, write_clip

    folder = tmp_path_factory.mktemp("jittery")
    tracking_model().save(folder / "tracking.safetensors")
    photo = marked_face(256)
    assert cv2_write(folder / "face.png", photo)
    rng = np.random.default_rng(7)
    sway = 12 * np.sin(2 * np.pi * np.arange(50) / 30)
    frames = [marked_face(256, {c: (u + s + rng.normal(0, 1.5), v + rng.normal(0, 1.5))
                                for c, (u, v) in FACE_MARKS.items()}) for s in sway]
    write_clip(folder / "jittery.mp4", frames, fps=25)
    return {"folder": folder, "ckpt": folder / "tracking.safetensors", "photo": folder / "face.png",
            "driver": folder / "jittery.mp4"}


def cv2_write(path: Path, image: np.ndarray) -> bool:
    import cv2

    return cv2.imwrite(str(path), np.clip(image[:, :, ::-1] * 255 + 0.5, 0, 255).astype(np.uint8))


def red_track(video: Path) -> np.ndarray:
    from fom_pipeline.testing import find_mark

    return np.array([find_mark(frame, "red") for frame in frames_of(video).astype(np.uint8)])


def test_smoothing_calms_jitter_keeps_the_sway_and_is_not_late(jittery):
    """With the tracking model the face's red mark follows the driver's: --smooth 5 takes most of its
    jitter away, keeps the 1.2 s sway and does not delay it; the motion saved by that run drives the
    same track again from the file."""
    from test_smoothing import sine_fit

    folder = jittery["folder"]
    base = ["--source_image", jittery["photo"], "--weight_path", jittery["ckpt"], "--faces", "64,64,192,192",
            "--relative", "--batch_size", 10, "--quiet"]
    tracks = {}
    for name, extra in (("raw", ["--driving_video", jittery["driver"]]),
                        ("smooth", ["--driving_video", jittery["driver"], "--smooth", 5,
                                    "--save_motion", folder / "smooth.safetensors"]),
                        ("file", ["--driving_motion", folder / "smooth.safetensors"])):
        res = cli(*base, *extra, "--output", folder / name)
        assert res.returncode == 0, res.stderr
        tracks[name] = red_track(folder / name / "result.mp4")
    assert tracks["raw"].shape == (50, 2)
    fits = {name: sine_fit(track[:, 0], 30) for name, track in tracks.items()}
    assert fits["raw"][0] == pytest.approx(12, abs=1)  # the face follows the driver one for one
    assert fits["smooth"][0] / fits["raw"][0] >= 0.85
    assert abs(fits["smooth"][1] - fits["raw"][1]) < 0.25  # frames
    jitter = {name: np.std(track[:, 0] - fits[name][0] * np.sin(2 * np.pi * (np.arange(50) - fits[name][1]) / 30))
              + np.std(track[:, 1]) for name, track in tracks.items()}
    assert jitter["smooth"] < 0.5 * jitter["raw"], jitter
    assert np.abs(tracks["file"] - tracks["smooth"]).max() < 0.05
