"""The command line, run as a real subprocess on real media with a generated checkpoint.

Checks what a user sees: the output video (frame count, size, fps, audio), that only the face
regions changed, the seed-exact mode against the seed's own stitching rules, Ctrl-C, and the summary.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from kit import REPO, read_frames

from fom_pipeline.video import ffmpeg_exe, iter_video_frames, probe

# The five faces of the seed's 1200x900 painting, typed by hand (x1,y1,x2,y2), left to right.
PAINTING_BOXES = [(185, 180, 320, 305), (405, 310, 505, 440), (600, 185, 695, 300),
                  (695, 320, 800, 440), (1085, 280, 1195, 400)]
PAINTING_FACES = ";".join(",".join(str(v) for v in box) for box in PAINTING_BOXES)
SINGLE_FACE = "48,40,208,216"  # the face in fom_source_image.png (256x256)


def cli(*args, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOM_ALLOW_DOWNLOAD": "0", **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "fom_pipeline", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def read_rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.fixture(scope="module")
def painting(media_dir) -> Path:
    return media_dir / "fom_source_image_multi_person.jpg"


@pytest.fixture(scope="module")
def driving(media_dir) -> Path:
    return media_dir / "fom_dv.mp4"


@pytest.fixture(scope="module")
def driver_with_audio(driving, tmp_path_factory) -> Path:
    """Three seconds of fom_dv.mp4 with a sine tone as its audio track."""
    out = tmp_path_factory.mktemp("media") / "dv_audio.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(driving), "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=5", "-t", "3", "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
                    "-crf", "18", "-c:a", "aac", str(out)], check=True)
    return out


def circle_mask(hw, windows, ratio=0.4, margin=0) -> np.ndarray:
    """Pixels inside any paste circle (centre of the window, radius ceil(ratio x window height))."""
    mask = np.zeros(hw, np.uint8)
    for x1, y1, x2, y2 in windows:
        radius = math.ceil((y2 - y1) * ratio) + margin
        cv2.circle(mask, (int((x1 + x2) / 2), int((y1 + y2) / 2)), radius, 255, -1, 8, 0)
    return mask > 0


def seed_window(box, hw):
    """The seed's crop window for a detector box (PaddleGAN first_order_predictor.extract_bbox)."""
    bx1, by1, bx2, by2 = box
    bh, bw = by2 - by1, bx2 - bx1
    cy, cx = by1 + int(bh / 2), bx1 + int(bw / 2)
    m = max(bh, bw)
    return (max(0, cx - int(0.8 * m)), max(0, cy - m), min(hw[1], cx + int(0.8 * m)), min(hw[0], cy + m))


def test_five_faces_default_mode(tmp_path, painting, driving, tiny_checkpoint):
    """The seed's multi-face example: 5 faces, a short slice; only the circles change."""
    res = cli("--source_image", painting, "--driving_video", driving, "--weight_path", tiny_checkpoint,
              "--faces", PAINTING_FACES, "--multi_person", "--relative", "--adapt_scale",
              "--max_frames", 8, "--batch_size", 4, "--output", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out" / "result.mp4"
    assert re.search(r"animated 5 faces, 8 frames in [\d.]+ s \([\d.]+ frames/s\) -> .*result\.mp4", res.stdout)
    # Progress bars with rate and time left went to stderr.
    for stage in ("keypoints", "generate"):
        assert re.search(stage + r": 100%.*8/8 \[[\d:]+<[\d:]+, +[\d.]+ ?(s/frame|frame/s)\]", res.stderr), res.stderr
    assert os.listdir(tmp_path / "out") == ["result.mp4"]

    info = probe(out)
    assert info["video"]["size"] == (1200, 900)
    assert info["video"]["fps"] == pytest.approx(30.0)
    assert info["audio"] is None  # fom_dv.mp4 has no audio track
    frames = read_frames(out)
    assert frames.shape == (8, 900, 1200, 3)

    from fom_pipeline import faces as F

    windows = [f.crop_box for f in F.make_faces((900, 1200), PAINTING_BOXES, crop_mode="square")]
    inside = circle_mask((900, 1200), windows, margin=4)
    source = read_rgb(painting).astype(int)
    diff = np.abs(frames.astype(int) - source)
    outside = diff[:, ~inside]
    assert outside.mean() < 2.5 and np.percentile(outside, 99) <= 16, "pixels outside the circles changed"
    # Every face changed (a random model's output is nothing like the painting).
    for window in windows:
        own = circle_mask((900, 1200), [window], margin=-6)
        assert diff[:, own].mean() > 20


def test_paddlegan_mode_reproduces_the_seed(tmp_path, painting, driving, tiny_checkpoint):
    """--crop_mode paddlegan --feather 0: the seed's window, resize, hard circles (up to codec noise)."""
    import torch

    from fom_pipeline import load_model

    res = cli("--source_image", painting, "--driving_video", driving, "--weight_path", tiny_checkpoint,
              "--faces", PAINTING_FACES, "--multi_person", "--relative", "--adapt_scale",
              "--crop_mode", "paddlegan", "--feather", 0, "--max_frames", 5, "--batch_size", 5,
              "--output", tmp_path, "--filename", "seed.mp4", "--quiet", "--cpu")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # --quiet: no bars, no notes
    got = read_frames(tmp_path / "seed.mp4")

    # The seed's stitching, written from its description: crop each window, resize it to 256 (uint8,
    # bilinear), animate, cast to uint8, resize back, copy through a filled circle, faces in order.
    torch.set_num_threads(2)
    model = load_model(tiny_checkpoint)
    source = read_rgb(painting)
    hw = source.shape[:2]
    drive = np.concatenate(list(iter_video_frames(driving, max_frames=5))).astype(np.float32) / 255.0
    kp = model.extract_keypoints(drive)
    expected = np.repeat(source[None], 5, axis=0)
    for box in PAINTING_BOXES:
        x1, y1, x2, y2 = seed_window(box, hw)
        face = cv2.resize(source[y1:y2, x1:x2], (256, 256)).astype(np.float32) / 255.0
        pred = model.animate(face, kp, relative=True, adapt_scale=True).numpy() * 255.0
        mask = circle_mask(hw, [(x1, y1, x2, y2)]).astype(np.uint8)
        for t in range(5):
            patch = np.zeros_like(source)
            patch[y1:y2, x1:x2] = cv2.resize(pred[t].astype(np.uint8), (x2 - x1, y2 - y1))
            expected[t] = cv2.copyTo(patch, mask, expected[t])
    diff = np.abs(got.astype(int) - expected.astype(int))
    faces = circle_mask(hw, [seed_window(b, hw) for b in PAINTING_BOXES])
    assert diff[:, faces].mean() < 2.0, "animated faces differ from the seed's beyond codec noise"
    assert diff[:, ~faces].mean() < 2.5
    # ...while an honest difference is far bigger: the source itself inside the circles.
    assert np.abs(got.astype(int) - source.astype(int))[:, faces].mean() > 20


def test_one_face_keeps_audio_and_fps(tmp_path, media_dir, driver_with_audio, tiny_checkpoint):
    """A single face, a driver with sound: the slice's audio is muxed in, the fps kept."""
    res = cli("--source_image", media_dir / "fom_source_image.png", "--driving_video", driver_with_audio,
              "--weight_path", tiny_checkpoint, "--faces", SINGLE_FACE, "--relative", "--adapt_scale",
              "--start", 0.5, "--duration", 0.4, "--batch_size", 6, "--output", tmp_path, "--quiet")
    assert res.returncode == 0, res.stderr
    assert "animated 1 face, 12 frames" in res.stdout and "audio copy" in res.stdout
    info = probe(tmp_path / "result.mp4")
    assert info["video"]["size"] == (256, 256) and info["video"]["fps"] == pytest.approx(30.0)
    assert info["audio"] == {"codec": "aac"}
    assert info["duration"] == pytest.approx(0.4, abs=0.06)
    assert read_frames(tmp_path / "result.mp4").shape == (12, 256, 256, 3)


def test_lone_face_paddlegan_pastes_whole_window_and_no_audio(tmp_path, painting, driver_with_audio,
                                                                tiny_checkpoint):
    """Without --multi_person only the first face is animated; the seed pastes it as a rectangle."""
    res = cli("--source_image", painting, "--driving_video", driver_with_audio, "--weight_path", tiny_checkpoint,
              "--faces", PAINTING_FACES, "--crop_mode", "paddlegan", "--feather", 0, "--max_frames", 4,
              "--batch_size", 4, "--no_audio", "--output", tmp_path)
    assert res.returncode == 0, res.stderr
    assert "5 boxes given without --multi_person; animating only the first" in res.stderr
    assert "animated 1 face, 4 frames" in res.stdout
    assert probe(tmp_path / "result.mp4")["audio"] is None
    frames = read_frames(tmp_path / "result.mp4").astype(int)
    x1, y1, x2, y2 = seed_window(PAINTING_BOXES[0], (900, 1200))
    rect = np.zeros((900, 1200), bool)
    rect[y1:y2, x1:x2] = True
    diff = np.abs(frames - read_rgb(painting).astype(int))
    grown = cv2.dilate(rect.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert diff[:, ~grown].mean() < 2.5
    corners = np.zeros_like(rect)  # window corners lie outside any circle: the rectangle was pasted
    corners[y1 + 2 : y1 + 20, x1 + 2 : x1 + 20] = True
    assert diff[:, corners].mean() > 20


def test_ctrl_c_leaves_no_partial_output(tmp_path, painting, driving, tiny_checkpoint):
    """SIGINT mid-generation: exit 130, temp file gone, the existing result untouched."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    previous = out_dir / "result.mp4"
    previous.write_bytes(b"an earlier result")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fom_pipeline", "--source_image", str(painting), "--driving_video", str(driving),
         "--weight_path", str(tiny_checkpoint), "--faces", SINGLE_FACE, "--max_frames", "400",
         "--batch_size", "2", "--output", str(out_dir), "--overwrite"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: proc.stderr.read(64), "")), daemon=True)
    reader.start()
    deadline = time.time() + 120
    while time.time() < deadline and not re.search(r"generate: +\d+%.*\| +[1-9]\d*/", "".join(seen)):
        assert proc.poll() is None, "".join(seen)
        time.sleep(0.1)
    partial = [p for p in os.listdir(out_dir) if p != "result.mp4"]
    assert partial, "the run should be writing a temporary file by now"
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=60)
    reader.join(timeout=5)
    stderr = "".join(seen)
    assert rc == 130, stderr
    assert "interrupted: stopped cleanly, no output written" in stderr
    assert "Traceback" not in stderr
    assert os.listdir(out_dir) == ["result.mp4"]
    assert previous.read_bytes() == b"an earlier result"
    assert proc.stdout.read() == ""  # no summary for an interrupted run


def test_convert_subcommand(tmp_path, golden_dir):
    from fom_pipeline import load_model

    src = golden_dir / "paddle" / "paddle-tiny-vox.pdparams"
    dst = tmp_path / "converted.safetensors"
    res = cli("convert", src, dst)
    assert res.returncode == 0, res.stderr
    assert f"wrote {dst}" in res.stdout
    assert load_model(dst).origin == "paddlegan"
    again = cli("convert", src, dst)
    assert again.returncode == 1 and again.stderr.strip().endswith("(pass --overwrite to replace it)")
    missing = cli("convert", tmp_path / "nope.pdparams", tmp_path / "x.safetensors")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: checkpoint not found: {tmp_path / 'nope.pdparams'} (check the path)"
