"""The command's detector paths, through its entry point with a stand-in detector.

S3FD's weights cannot be downloaded on the test machines, so `faces.load_face_detector` is replaced
by stand-ins with the same `.detect` interface (fixed boxes; a skin-colour head tracker for the
green-screen driving clip). Everything else is the real command.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from faces_helpers import PAINTING_BOXES, HandBoxDetector, SkinHeadDetector, read_rgb

from fom_pipeline import faces as F
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
    loaded = use_detector(HandBoxDetector(PAINTING_BOXES))
    common = ["--source_image", painting, "--driving_video", media_dir / "fom_dv.mp4", "--weight_path",
              tiny_checkpoint, "--max_frames", 2, "--batch_size", 2, "--output", tmp_path]
    rc, out, err = _run(capsys, *common, "--filename", "one.mp4")
    assert rc == 0, err
    assert loaded[0][0] == "sfd"  # the seed's detector by default
    assert "animated 1 face, 2 frames" in out
    assert re.search(r"detect faces: 100%.*1/1", err)
    # Without --multi_person the largest face (the first box) is the one animated.
    diff = np.abs(np.concatenate(list(iter_video_frames(tmp_path / "one.mp4"))) / 255.0 - read_rgb(painting))
    x1, y1, x2, y2 = (int(v) for v in PAINTING_BOXES[0])
    assert diff[:, y1:y2, x1:x2].mean() > 0.08
    x1, y1, x2, y2 = (int(v) for v in PAINTING_BOXES[4])
    assert diff[:, y1:y2, x1:x2].mean() < 0.02

    rc, out, err = _run(capsys, *common, "--filename", "all.mp4", "--multi_person", "--quiet")
    assert rc == 0, err
    assert "animated 5 faces, 2 frames" in out


def test_no_face_found(tmp_path, media_dir, tiny_checkpoint, use_detector, capsys):
    use_detector(HandBoxDetector([]))
    rc, out, err = _run(capsys, "--source_image", media_dir / "fom_source_image.png", "--driving_video",
                        media_dir / "fom_dv.mp4", "--weight_path", tiny_checkpoint, "--output", tmp_path, "--quiet")
    assert rc == 1 and out == ""
    assert err.startswith("error: no face found") and "--faces" not in err.splitlines()[0][:14]
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

    monkeypatch.setattr(F, "crop_driving_frames", spy)
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
