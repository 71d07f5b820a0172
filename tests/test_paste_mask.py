"""A paste mask instead of the circle: where faces are pasted, the feather, which faces it covers,
size errors; the streamed paste and the command line's --mask."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from faces_helpers import PAINTING_BOXES
from kit import PAINTING, eroded, face_mask, read_frames, read_rgb, run_cli

from fom_pipeline import pipeline as P
from fom_pipeline.errors import InputError
from fom_pipeline.faces import crop_faces, make_faces, paste_faces
from fom_pipeline.faces.paste import circle_radius, feather_width, mask_covers
from fom_pipeline.streams import FrameArray

HW = (900, 1200)


@pytest.fixture(scope="module")
def painting():
    return read_rgb(PAINTING)


@pytest.fixture(scope="module")
def faces():
    return make_faces(HW, PAINTING_BOXES, size=64)


def circle(face, ratio=0.4, grow=0.0) -> np.ndarray:
    return face_mask(face, HW, ratio, grow)


def box_mask(face, grow_x=0, grow_y=0, shift_y=0) -> np.ndarray:
    """A rectangle around the face's box (a stand-in for a hand-painted or segmented face)."""
    x1, y1, x2, y2 = (int(v) for v in face.box)
    mask = np.zeros(HW, np.float32)
    mask[max(0, y1 - grow_y + shift_y) : y2 + grow_y + shift_y, max(0, x1 - grow_x) : x2 + grow_x] = 1.0
    return mask


def test_mask_replaces_the_circle_of_the_faces_it_covers(painting, faces):
    green = np.zeros((len(faces), 1, 64, 64, 3), np.float32)
    green[..., 1] = 1.0  # every animated face is pure green: where it lands is plain to see
    # Face 1: a tall narrow mask, inside the window, past the circle above and below, narrower than it.
    mask = box_mask(faces[0], grow_x=-20, grow_y=60)
    assert mask_covers(faces[0], mask) and not any(mask_covers(f, mask) for f in faces[1:])
    out = paste_faces(painting, faces, green, ratio=0.4, mask=mask)[0]
    plain = paste_faces(painting, faces, green, ratio=0.4)[0]

    x1, y1, x2, y2 = faces[0].crop_box
    window = np.zeros(HW, bool)
    window[max(0, y1) : y2, max(0, x1) : x2] = True
    width = feather_width(faces[0], 0.4, None)
    core = eroded(mask * window, int(np.ceil(width)) + 1)
    assert core.sum() > 1000 and (core & ~circle(faces[0])).sum() > 500  # the mask reaches past the old circle
    assert np.allclose(out[core], (0.0, 1.0, 0.0), atol=1e-6), "inside the mask: the animated face"
    untouched = ~(mask >= 0.5) | ~window
    old_circle_only = circle(faces[0]) & untouched
    assert old_circle_only.sum() > 1000
    assert np.array_equal(out[old_circle_only], painting[old_circle_only]), "the old circle outside the mask is the photo"
    # the other faces keep their circles exactly as without a mask
    others = np.zeros(HW, bool)
    for face in faces[1:]:
        others |= circle(face, grow=2)
    assert np.array_equal(out[others & untouched], plain[others & untouched])
    assert np.allclose(out[circle(faces[1], 0.2)], (0.0, 1.0, 0.0))


def test_mask_is_feathered_inward_like_the_circle(painting, faces):
    green = np.zeros((1, 1, 64, 64, 3), np.float32)
    green[..., 1] = 1.0
    face = faces[0]
    mask = box_mask(face, grow_x=10, grow_y=10)
    outside = mask < 0.5
    hard = paste_faces(painting, [face], green, ratio=0.4, feather=0, mask=mask)[0]
    soft = paste_faces(painting, [face], green, ratio=0.4, feather=12, mask=mask)[0]
    auto = paste_faces(painting, [face], green, ratio=0.4, mask=mask)[0]
    for out in (hard, soft, auto):  # never past the mask
        assert np.array_equal(out[outside], painting[outside])
    assert np.allclose(hard[~outside], (0.0, 1.0, 0.0))
    rim = (~outside) & ~eroded(mask, 11)  # within 11 px of the mask's edge
    core = eroded(mask, 13)
    assert np.allclose(soft[core], (0.0, 1.0, 0.0))
    green_share = (soft[rim][:, 1] - painting[rim][:, 1]) / np.maximum(1e-6, 1.0 - painting[rim][:, 1])
    assert 0.05 < green_share.mean() < 0.95, "the edge blends"
    # the automatic width is the circle's (10% of its radius), so it differs from 0 and from 12 px
    assert feather_width(face, 0.4, None) == pytest.approx(0.1 * circle_radius(face, 0.4))
    assert not np.array_equal(auto, hard) and not np.array_equal(auto, soft)
    # a soft mask keeps its grey levels inside (0.5 = half the animated face)
    half = paste_faces(painting, [face], green, ratio=0.4, feather=0, mask=mask * 0.5)[0]
    assert np.allclose(half[core], 0.5 * painting[core] + 0.5 * np.array([0, 1, 0]), atol=1e-6)


def test_which_faces_a_mask_covers(faces):
    face = faces[0]
    x1, y1, x2, y2 = (int(v) for v in face.box)
    touching = np.zeros(HW, np.float32)
    touching[y1 : y1 + 10, x1:x2] = 1.0  # only the box's top strip (a neighbour's painted hair)
    assert not mask_covers(face, touching)
    mouth = np.zeros(HW, np.float32)
    mouth[(y1 + y2) // 2 + 5 : (y1 + y2) // 2 + 20, x1 + 40 : x2 - 40] = 1.0  # a small patch in the middle
    assert mask_covers(face, mouth)
    assert not mask_covers(face, mouth * 0.4), "below 0.5 is off"


def test_mask_of_the_wrong_size_names_both_sizes(painting, faces):
    animated = np.zeros((len(faces), 1, 64, 64, 3), np.float32)
    with pytest.raises(InputError, match=r"mask is 600x450 but the picture is 1200x900"):
        paste_faces(painting, faces, animated, mask=np.ones((450, 600), np.float32))
    with pytest.raises(InputError, match=r"expected one grey map"):
        paste_faces(painting, faces, animated, mask=np.ones((2, 2, 900, 1200), np.float32))
    # ComfyUI's MASK [1,H,W] and [H,W,1] are fine
    paste_faces(painting, faces, animated, mask=np.ones((1, 900, 1200), np.float32))
    paste_faces(painting, faces, animated, mask=np.ones((900, 1200, 1), np.uint8) * 255)


def test_streamed_paste_with_a_mask_checks_first_and_matches_the_whole_array_path(tiny_model, painting,
                                                                                   media_dir, caplog):
    from fom_pipeline.streams import VideoFile

    records = make_faces(HW, PAINTING_BOXES[:3], size=tiny_model.image_size)
    crops = crop_faces(painting, records)
    driving = np.concatenate(list(VideoFile(media_dir / "fom_dv.mp4", max_frames=6).chunks(6)))
    kp = P.driving_keypoints(tiny_model, FrameArray(driving, fps=30))
    animation = P.FaceAnimation(tiny_model, crops, kp, batch_size=4)
    mask = box_mask(records[1], grow_x=15, grow_y=30) + box_mask(records[2], grow_x=-10)
    with pytest.raises(InputError, match="mask is 1199x900 but the picture is 1200x900"):
        P.PastedFrames(painting, records, animation, mask=mask[:, 1:])
    pasted = P.PastedFrames(painting, records, animation, mask=mask)
    assert pasted.covered == [1, 2]
    streamed = np.concatenate(list(pasted.chunks()))
    whole = animation.frames()
    expected = np.round(np.clip(paste_faces(painting, records, whole, mask=mask), 0, 1) * 255).astype(np.uint8)
    assert streamed.shape == (6, 900, 1200, 3)
    assert np.abs(streamed.astype(int) - expected.astype(int)).max() <= 1
    with caplog.at_level(logging.WARNING, logger="fom_pipeline"):
        none = P.PastedFrames(painting, records, animation, mask=np.zeros(HW, np.float32))
    assert none.covered == [] and "covers none of the 3 faces" in caplog.text


def test_cli_mask_pastes_inside_it_and_keeps_the_photo_in_the_old_circle(tmp_path, media_dir, tiny_checkpoint):
    painting = media_dir / "fom_source_image_multi_person.jpg"
    photo = cv2.imread(str(painting), cv2.IMREAD_COLOR)[:, :, ::-1].astype(int)
    boxes = [PAINTING_BOXES[0], PAINTING_BOXES[2]]
    records = make_faces(HW, boxes)  # the CLI's default square windows
    mask = box_mask(records[0], grow_x=-20, grow_y=60)  # face 1 only: taller and narrower than its circle
    cv2.imwrite(str(tmp_path / "mask.png"), (mask * 255).astype(np.uint8))
    common = ["--source_image", painting, "--driving_video", media_dir / "fom_dv.mp4", "--weight_path",
              tiny_checkpoint, "--faces", ";".join(",".join(str(int(v)) for v in b) for b in boxes), "--multi_person",
              "--relative", "--adapt_scale", "--max_frames", 3, "--batch_size", 3]
    res = run_cli(*common, "--mask", tmp_path / "mask.png", "--output", tmp_path / "masked")
    assert res.returncode == 0, res.stderr
    assert "mask: face(s) 1 pasted through the mask, any other in its circle" in res.stderr
    res = run_cli(*common, "--ratio", 1.0, "--feather", 0, "--output", tmp_path / "whole", "--quiet")
    assert res.returncode == 0, res.stderr
    masked = read_frames(tmp_path / "masked" / "result.mp4").astype(int)
    whole = read_frames(tmp_path / "whole" / "result.mp4").astype(int)  # each whole window pasted
    assert masked.shape == whole.shape == (3, 900, 1200, 3)

    x1, y1, x2, y2 = records[0].crop_box
    window = np.zeros(HW, bool)
    window[max(0, y1) : y2, max(0, x1) : x2] = True
    core = eroded(mask * window, int(np.ceil(feather_width(records[0], 0.4, None))) + 4)
    assert (core & ~circle(records[0])).sum() > 500  # the mask reaches past the old circle
    # inside the mask: the animation (what the whole-window paste shows there), not the photo
    assert np.abs(masked[:, core] - whole[:, core]).mean() < 2.5
    assert np.abs(masked[:, core] - photo[core]).mean() > 8
    # the old circle outside the mask, and everything outside both pastes: the photo, codec noise aside
    near = ~eroded(1.0 - mask, 4) | circle(records[1], grow=4)
    old_circle = circle(records[0]) & ~near
    background = ~near & ~circle(records[0], grow=4) | old_circle
    diff = np.abs(masked[:, background] - photo[background])
    assert old_circle.sum() > 1000 and diff.mean() < 2.5 and np.percentile(diff, 99) <= 16
    # face 3 is not covered: it keeps its circle
    own = circle(records[1], 0.2)
    assert np.abs(masked[:, own] - whole[:, own]).mean() < 2.5 and np.abs(masked[:, own] - photo[own]).mean() > 8


def test_cli_mask_errors(tmp_path, media_dir, tiny_checkpoint):
    painting = media_dir / "fom_source_image_multi_person.jpg"
    small = np.zeros((450, 600), np.uint8)
    cv2.imwrite(str(tmp_path / "small.png"), small)
    rgba = np.zeros((900, 1200, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:100, :100, 3] = 0
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    colour = np.zeros((900, 1200, 3), np.uint8)
    colour[..., 2] = 255
    cv2.imwrite(str(tmp_path / "red.png"), colour)
    expected = {"small.png": "mask small.png is 600x450 but the picture is 1200x900",
                "alpha.png": "has transparency; --mask reads grey levels (white = animated face",
                "red.png": "is in colour; --mask reads grey levels",
                "missing.png": "mask not found"}
    for name, message in expected.items():
        res = run_cli("--source_image", painting, "--driving_video", media_dir / "fom_dv.mp4", "--weight_path",
                  tiny_checkpoint, "--faces", "185,180,320,305", "--mask", tmp_path / name, "--output",
                  tmp_path / "out", "--quiet")
        assert res.returncode == 1 and message in res.stderr, (name, res.stderr)
        assert res.stderr.count("\n") == 1, res.stderr  # one line, no stack trace
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
