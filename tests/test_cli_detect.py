"""The command's detector paths, through its entry point with a stand-in detector.

S3FD's weights cannot be downloaded on the test machines, so `faces.load_face_detector` is replaced
by stand-ins with the same `.detect` interface (fixed boxes; a skin-colour head tracker for the
green-screen driving clip). Everything else is the real command.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from faces_helpers import (
    DECOY_LOW,
    DECOY_NEAR,
    NOISY_DETECTIONS,
    PAINTING_BOXES,
    PAINTING_SCORES,
    HandBoxDetector,
    SkinHeadDetector,
    read_rgb,
)

from fom_pipeline import faces as F
from fom_pipeline import pipeline
from fom_pipeline.cli import main
from fom_pipeline.video import iter_video_frames, probe


@pytest.fixture
def use_detector(monkeypatch):
    loaded = []

    def install(detector):
        def load(backend="sfd", **kwargs):
            loaded.append((backend, kwargs))
            return detector

        monkeypatch.setattr(F, "load_face_detector", load)
        return loaded

    return install


def _run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_detected_faces_one_or_all(tmp_path, media_dir, tiny_checkpoint, use_detector, capsys):
    painting = media_dir / "fom_source_image_multi_person.jpg"
    # The five faces with their own scores (the smallest, rightmost one scores best) plus decoys under
    # the 0.5 threshold, one of them far larger than any face.
    loaded = use_detector(HandBoxDetector(NOISY_DETECTIONS))
    assert max(PAINTING_SCORES) == PAINTING_SCORES[4] and min(PAINTING_SCORES) == PAINTING_SCORES[0]
    common = ["--source_image", painting, "--driving_video", media_dir / "fom_dv.mp4", "--weight_path",
              tiny_checkpoint, "--max_frames", 2, "--batch_size", 2, "--output", tmp_path]
    rc, out, err = _run(capsys, *common, "--filename", "one.mp4")
    assert rc == 0, err
    assert loaded[0][0] == "sfd"  # the seed's detector by default
    assert "animated 1 face, 2 frames" in out
    assert re.search(r"detect faces: 100%.*1/1", err)
    # Without --multi_person the largest face over the threshold (face 0) is the one animated: not the
    # best-scoring face 4, not the big decoy under the threshold.
    diff = np.abs(np.concatenate(list(iter_video_frames(tmp_path / "one.mp4"))) / 255.0 - read_rgb(painting))

    def changed(box) -> float:
        x1, y1, x2, y2 = (int(v) for v in box[:4])
        return float(diff[:, y1:y2, x1:x2].mean())

    assert changed(PAINTING_BOXES[0]) > 0.08
    for box in (PAINTING_BOXES[4], DECOY_LOW, DECOY_NEAR):
        assert changed(box) < 0.02, box

    rc, out, err = _run(capsys, *common, "--filename", "all.mp4", "--multi_person", "--quiet")
    assert rc == 0, err
    assert "animated 5 faces, 2 frames" in out  # the two decoys under the threshold are not animated
    diff = np.abs(np.concatenate(list(iter_video_frames(tmp_path / "all.mp4"))) / 255.0 - read_rgb(painting))
    for box in PAINTING_BOXES:
        assert changed(box) > 0.08, box
    for box in (DECOY_LOW, DECOY_NEAR):
        assert changed(box) < 0.02, box


def test_no_face_found(tmp_path, media_dir, tiny_checkpoint, use_detector, capsys):
    use_detector(HandBoxDetector([DECOY_LOW, DECOY_NEAR]))  # boxes, but all under the 0.5 threshold
    rc, out, err = _run(capsys, "--source_image", media_dir / "fom_source_image.png", "--driving_video",
                        media_dir / "fom_dv.mp4", "--weight_path", tiny_checkpoint, "--output", tmp_path, "--quiet")
    assert rc == 1 and out == ""
    # One line that says what was looked for and names the command line's remedy.
    assert err.startswith("error: no face found in the source image (detector score 0.5 or more)")
    assert '--faces "x1,y1,x2,y2;' in err and "lower the threshold" not in err  # there is no threshold flag
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_crop_driving_uses_a_fixed_window(tmp_path, media_dir, tiny_checkpoint, use_detector, capsys,
                                          monkeypatch):
    use_detector(SkinHeadDetector())
    windows = []
    real_crop = F.crop_driving_frames

    def spy(frames, window, size):
        windows.append(tuple(window))
        return real_crop(frames, window, size)

    monkeypatch.setattr(pipeline, "crop_driving_frames", spy)  # the shared pipeline's crop step
    rc, out, err = _run(capsys, "--source_image", media_dir / "fom_source_image.png", "--driving_video",
                        media_dir / "lp_driving_d0.mp4", "--weight_path", tiny_checkpoint, "--faces", "48,40,208,216",
                        "--crop_driving", "--max_frames", 10, "--batch_size", 5, "--output", tmp_path)
    assert rc == 0, err
    assert re.search(r"detect driving face: 100%.*10/10", err)
    assert "animated 1 face, 10 frames" in out
    assert len(set(windows)) == 1, "one window for the whole clip"
    x1, y1, x2, y2 = windows[0]
    # The stand-in finds the head at about (120,121)-(408,409): the window is a square around it,
    # 1.8 times its size (so here a little larger than the 512 px frame, edge-padded).
    assert x2 - x1 == y2 - y1 and abs((x2 - x1) - 1.8 * 288) <= 4
    assert abs((x1 + x2) / 2 - 264) <= 3 and abs((y1 + y2) / 2 - 265) <= 3
    info = probe(tmp_path / "result.mp4")
    assert info["video"]["size"] == (256, 256) and info["video"]["fps"] == pytest.approx(25.0)


def test_crop_driving_without_a_face_is_an_error(tmp_path, media_dir, tiny_checkpoint, use_detector, capsys):
    use_detector(HandBoxDetector([]))
    rc, out, err = _run(capsys, "--source_image", media_dir / "fom_source_image.png", "--driving_video",
                        media_dir / "lp_driving_d0.mp4", "--weight_path", tiny_checkpoint, "--faces", "48,40,208,216",
                        "--crop_driving", "--max_frames", 4, "--output", tmp_path, "--quiet")
    assert rc == 1 and out == ""
    assert err.strip() == "error: no face found in any driving frame; give a box by hand or use the video as is"
