"""--source_video through the real command line (subprocess, real ffmpeg, h264 in and out), measured
with the tracking model: a slow pan over three marked faces (tests/video_scene.py) driven by a driver
swaying its red mark.

Each face's mark sits at its place in that source frame plus the driver's sway (right axis, no lag,
no frame lost); away from the faces every output frame is its source frame (codec noise aside). A
face leaving the frame and a cut to another shot leave those frames as the source. The result keeps
the source's frame rate and sound (or the driver's, or none), ends with the shorter clip; bad input
is one line and nothing is written or overwritten.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from kit import run_cli
from motion_scene import best_lag, boxes_text, driver_frames, sway, tracking_error
from video_scene import PAN_FACES, away_and_back, circles_mask, mark_near, other_shot, pan_clip

from fom_pipeline.testing import write_clip
from fom_pipeline.video import ffmpeg_exe, iter_video_frames, probe, read_video_meta

FRAMES = 12
TOLERANCE_PX = 1.0  # frame pixels after the source's, the driver's and the output's h264 (measured: ~0.3)
BOXES = boxes_text(PAN_FACES)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("video_source")


@pytest.fixture(scope="module")
def weights(tracking_checkpoint) -> Path:
    return tracking_checkpoint


def _with_tone(path: Path, seconds: float) -> Path:
    """``path`` with a sine sound track muxed in (a copy named *_tone.mp4)."""
    out = path.with_name(path.stem + "_tone.mp4")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(path), "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-c:v", "copy", "-c:a", "aac", "-shortest", str(out)],
                   check=True)
    return out


@pytest.fixture(scope="module")
def clips(work) -> dict:
    panning = pan_clip(FRAMES)
    leaving = pan_clip(FRAMES)
    leaving.offsets = away_and_back(FRAMES, 20.0, 8)
    leaving.cut, leaving.other = (10,), other_shot()
    out = {"pan": panning, "leave": leaving}
    for name, clip in out.items():
        write_clip(work / f"{name}.mp4", clip.frames())
    write_clip(work / "sway.mp4", driver_frames(sway(FRAMES, 0)))
    write_clip(work / "sway_long.mp4", driver_frames(sway(2 * FRAMES, 0)), fps=12.5)
    write_clip(work / "pan_long.mp4", pan_clip(40).frames(), fps=25.0)
    return out


def _run(work, weights, source: Path, driver: Path, name: str, *flags):
    return run_cli("--source_video", source, "--driving_video", driver, "--faces", BOXES, "--multi_person",
                   "--relative", "--weight_path", weights, "--cpu", "--quiet", "--batch_size", 4,
                   "--output", work, "--filename", name, *flags)


def _frames(path: Path) -> np.ndarray:
    return np.concatenate(list(iter_video_frames(path)))


def _assert_background_is_the_source(out, source, away, label: str) -> None:
    diff = np.abs(out.astype(int) - source.astype(int)).max(-1)[away]
    assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 16, f"{label}: the source changed away from the faces"


def test_each_face_follows_the_driver_on_its_own_source_frame(work, weights, clips):
    result = _run(work, weights, work / "pan.mp4", work / "sway.mp4", "pan_out.mp4")
    assert result.returncode == 0, result.stderr
    out, source = _frames(work / "pan_out.mp4"), _frames(work / "pan.mp4")
    clip, path = clips["pan"], sway(FRAMES, 0)
    assert out.shape == (FRAMES, 320, 640, 3)
    worst = 0.0
    for i in range(3):
        expected = np.stack([clip.expected(t, i, path) for t in range(FRAMES)])
        measured = np.array([mark_near(out[t], clip.source_mark(t, i)) for t in range(FRAMES)], float)
        err = tracking_error(measured, expected)
        assert err.max() < TOLERANCE_PX, f"face {i + 1}: error per frame {err.round(2)}"
        assert best_lag(measured, expected) == 0
        sources = np.stack([clip.source_mark(t, i) for t in range(FRAMES)])
        assert np.ptp((measured - sources)[:, 1]) < TOLERANCE_PX, "moved across the driver's axis"
        worst = max(worst, float(err.max()))
    for t in range(FRAMES):
        _assert_background_is_the_source(out[t], source[t], ~circles_mask(clip, t), f"frame {t}")
    print(f"--source_video: worst tracking error {worst:.2f} px")


def test_a_batch_row_animates_a_source_video(work, weights, clips):
    """`batch` takes a source_video column (relative to the jobs file, as a photo) and --audio's words."""
    jobs = work / "video_jobs.csv"
    jobs.write_text(f'source_video,driving_video,output,faces,audio\npan.mp4,sway.mp4,batch/pan.mp4,"{BOXES}",none\n')
    result = run_cli("batch", jobs, "--multi_person", "--relative", "--weight_path", weights, "--cpu", "--quiet",
                     "--batch_size", 4)
    assert result.returncode == 0, result.stderr
    out = _frames(work / "batch" / "pan.mp4")
    clip, path = clips["pan"], sway(FRAMES, 0)
    assert out.shape == (FRAMES, 320, 640, 3)
    for i in range(3):
        expected = np.stack([clip.expected(t, i, path) for t in range(FRAMES)])
        measured = np.array([mark_near(out[t], clip.source_mark(t, i)) for t in range(FRAMES)], float)
        assert tracking_error(measured, expected).max() < TOLERANCE_PX, f"face {i + 1}"
    assert probe(work / "batch" / "pan.mp4")["audio"] is None


def test_a_face_leaving_the_frame_and_a_cut_leave_those_frames_as_the_source(work, weights, clips):
    result = _run(work, weights, work / "leave.mp4", work / "sway.mp4", "leave_out.mp4")
    assert result.returncode == 0, result.stderr
    out, source = _frames(work / "leave_out.mp4"), _frames(work / "leave.mp4")
    clip, path = clips["leave"], sway(FRAMES, 0)
    _assert_background_is_the_source(out[10], source[10], np.ones((320, 640), bool), "the cut")
    checked = {"followed": 0, "left": 0}
    for t in range(FRAMES):
        for i in range(3):
            x1, _, x2, _ = np.asarray(clip.faces[i].box, float) - clip.offsets[t]
            if t in clip.cut or x2 < 0.4 * (x2 - x1):
                where = circles_mask(clip, t, faces=[i]) & ~circles_mask(clip, t, faces=[j for j in range(3) if j != i])
                _assert_background_is_the_source(out[t], source[t], where, f"face {i + 1} not seen in frame {t}")
                checked["left"] += 1
            elif clip.visible(t, i) and 15 < clip.expected(t, i, path)[0] < 625:
                err = np.linalg.norm(mark_near(out[t], clip.source_mark(t, i)) - clip.expected(t, i, path))
                assert err < TOLERANCE_PX, f"face {i + 1}, frame {t}: {err:.2f} px"
                checked["followed"] += 1
    assert checked["left"] >= 4 and checked["followed"] >= 20, checked


def test_the_result_keeps_the_source_s_timeline_and_the_sound_asked_for(work, weights, clips):
    source = _with_tone(work / "pan_long.mp4", 1.6)  # 40 frames at 25 fps, with sound
    driver = _with_tone(work / "sway_long.mp4", 1.92)  # 24 frames at 12.5 fps (1.92 s), with sound
    for flags, sound in (((), True), (("--audio", "driving"), True), (("--audio", "none"), False),
                         (("--no_audio",), False)):
        name = f"timeline_{'_'.join(flags) or 'default'}.mp4".replace("--", "")
        result = _run(work, weights, source, driver, name, *flags)
        assert result.returncode == 0, result.stderr
        meta = read_video_meta(work / name)
        assert (meta.fps, meta.frame_count) == (pytest.approx(25.0), 40), "not the source's rate and length"
        assert (probe(work / name)["audio"] is not None) is sound, flags
    shorter = _run(work, weights, work / "pan.mp4", driver, "shorter_source.mp4", "--fps", 12.5)
    assert shorter.returncode == 0, shorter.stderr
    meta = read_video_meta(work / "shorter_source.mp4")
    assert (meta.fps, meta.frame_count) == (pytest.approx(12.5), 6)  # the 0.48 s source at --fps 12.5


def test_a_motion_file_drives_a_source_video_as_its_video_did(work, weights, clips):
    """--save_motion on a --source_video run, then --driving_motion (with --smooth on top): the same
    frames again without the driving video, and smoothing calms the motion it drives."""
    motion = work / "sway.safetensors"
    first = _run(work, weights, work / "pan.mp4", work / "sway.mp4", "saved.mp4", "--save_motion", motion)
    assert first.returncode == 0, first.stderr
    again = run_cli("--source_video", work / "pan.mp4", "--driving_motion", motion, "--faces", BOXES,
                    "--multi_person", "--relative", "--weight_path", weights, "--cpu", "--quiet", "--batch_size", 4,
                    "--output", work, "--filename", "from_motion.mp4")
    assert again.returncode == 0, again.stderr
    a, b = _frames(work / "saved.mp4"), _frames(work / "from_motion.mp4")
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 2
    smooth = run_cli("--source_video", work / "pan.mp4", "--driving_motion", motion, "--smooth", 6, "--faces",
                     BOXES, "--multi_person", "--relative", "--weight_path", weights, "--cpu", "--quiet",
                     "--batch_size", 4, "--output", work, "--filename", "smoothed.mp4")
    assert smooth.returncode == 0, smooth.stderr
    clip, smoothed = clips["pan"], _frames(work / "smoothed.mp4")
    sways = [np.ptp([mark_near(frames[t], clip.source_mark(t, 1))[0] - clip.source_mark(t, 1)[0]
                     for t in range(FRAMES)]) for frames in (a, smoothed)]
    assert sways[1] < 0.9 * sways[0], f"--smooth did not calm the motion: sway {sways[0]:.1f} -> {sways[1]:.1f} px"


def test_restoration_on_a_source_video_keeps_every_face_on_its_motion(work, weights, clips):
    """--restore_model with --source_video (Real-ESRGAN Compact made near-identity, a 2x upscaler resized
    back: it changes every pixel a little): each face's mark still sits at its source place plus the
    driver's sway, frame by frame, and the restorer really ran (the faces differ from an unrestored run)."""
    import restorers

    restorer = restorers.write_state(work / "compact.safetensors", restorers.compact_state(scale=2))
    result = _run(work, weights, work / "pan.mp4", work / "sway.mp4", "restored.mp4", "--restore_model", restorer)
    assert result.returncode == 0, result.stderr
    plain = _run(work, weights, work / "pan.mp4", work / "sway.mp4", "unrestored.mp4")
    assert plain.returncode == 0, plain.stderr
    out, unrestored = _frames(work / "restored.mp4"), _frames(work / "unrestored.mp4")
    clip, path = clips["pan"], sway(FRAMES, 0)
    assert out.shape == (FRAMES, 320, 640, 3)
    for i in range(3):
        expected = np.stack([clip.expected(t, i, path) for t in range(FRAMES)])
        measured = np.array([mark_near(out[t], clip.source_mark(t, i)) for t in range(FRAMES)], float)
        err = tracking_error(measured, expected)
        assert err.max() < TOLERANCE_PX, f"face {i + 1}: error per frame {err.round(2)}"
    faces = circles_mask(clip, 0)
    assert np.abs(out[0].astype(int) - unrestored[0].astype(int)).max(-1)[faces].mean() > 0.5, "not restored"


def test_bad_source_input_is_one_line_and_nothing_is_written(work, weights, clips):
    picture = work / "still.png"
    cv2.imwrite(str(picture), np.full((320, 640, 3), 128, np.uint8))
    broken = work / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    empty = work / "empty.mp4"
    empty.write_bytes(b"")
    kept = work / "kept.mp4"
    kept.write_bytes(b"keep me")
    driver, pan = work / "sway.mp4", work / "pan.mp4"
    base = ["--driving_video", driver, "--weight_path", weights, "--faces", BOXES, "--output", work,
            "--filename", "kept.mp4", "--overwrite"]  # an existing result, to be left as it is
    cases = {
        "still picture as video": (["--source_video", picture, *base], f"source video {picture} is a still picture, "
                                   "not a video (give it with --source_image)"),
        "broken video": (["--source_video", broken, *base], str(broken)),
        "empty video": (["--source_video", empty, *base], str(empty)),
        "missing video": (["--source_video", work / "nope.mp4", *base], f"source video not found: {work / 'nope.mp4'}"),
        "video as picture": (["--source_image", pan, *base], f"source image {pan} is a video, not a picture "
                             "(give it with --source_video)"),
        "both sources": (["--source_image", picture, "--source_video", pan, *base],
                         "give --source_image or --source_video, not both"),
        "no source": (base, "--source_image (or --source_video FILE)"),
        "source sound of a photo": (["--source_image", picture, *base, "--audio", "source"],
                                    "--audio source takes the sound of --source_video"),
        "faces outside the first frame": (["--source_video", pan, *base[:4], "--faces", "700,10,800,110",
                                           *base[6:]], "lies outside the 640x320 image"),
    }
    for name, (args, text) in cases.items():
        result = run_cli(*args, timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert text in lines[0], (name, lines[0])
        assert kept.read_bytes() == b"keep me", f"{name}: the existing output was touched"
    assert sorted(p.name for p in work.glob("*partial*")) == []
