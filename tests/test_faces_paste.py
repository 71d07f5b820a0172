"""Pasting animated faces back: round trip, feather, colour match, order, chaining, errors, speed."""

from __future__ import annotations

import numpy as np
import pytest
from faces_helpers import PAINTING_BOXES
from kit import PAINTING, face_mask, read_rgb

from fom_pipeline.errors import InputError
from fom_pipeline.faces import crop_faces, make_faces, paste_faces


@pytest.fixture(scope="module")
def painting():
    return read_rgb(PAINTING)


def test_round_trip_reproduces_original_inside_each_circle(painting):
    hw = painting.shape[:2]
    # Crop side == model size, so cropping and pasting back resample nothing.
    boxes = [(200, 180, 320, 300), (412, 310, 508, 430), (1080, 280, 1180, 380)]
    sides = [240, 240, 200]  # 2.0 x max(box w, box h)
    faces = [make_faces(hw, [b], crop_scale=2.0, size=s)[0] for b, s in zip(boxes, sides, strict=True)]
    assert [f.crop_hw for f in faces] == [(s, s) for s in sides]
    crops = [crop_faces(painting, [f])[0] for f in faces]
    # Mark the rest of the image so that any pixel pasted from the wrong place would show.
    canvas = np.zeros_like(painting)
    for face, crop in zip(faces, crops, strict=True):
        out = paste_faces(canvas, [face], crop[None, None], ratio=0.4, feather=0)
        mask = face_mask(face, hw)
        assert np.abs(out[0][mask] - painting[mask]).max() <= 1 / 255
        assert (out[0][~mask] == 0).all()  # hard edge: nothing outside the circle changes


def test_round_trip_with_resampling_stays_close(painting):
    faces = make_faces(painting.shape[:2], PAINTING_BOXES, size=256)
    crops = crop_faces(painting, faces)
    out = paste_faces(painting, faces, crops[:, None], ratio=0.4, feather=0)
    for face in faces:
        mask = face_mask(face, painting.shape[:2])
        assert np.abs(out[0][mask] - painting[mask]).mean() < 0.01
    # paddlegan windows (non-square, stretched) map back just as well
    seed_faces = make_faces(painting.shape[:2], PAINTING_BOXES, crop_mode="paddlegan", size=256)
    out = paste_faces(painting, seed_faces, crop_faces(painting, seed_faces)[:, None], ratio=0.4)
    assert np.abs(out[0] - painting).mean() < 0.002


def test_feather_softens_edge_and_colour_match_moves_stats(painting):
    hw = painting.shape[:2]
    faces = make_faces(hw, PAINTING_BOXES[:1], size=256)
    bright = np.full((1, 1, 256, 256, 3), 0.9, np.float32)
    hard = paste_faces(painting, faces, bright, feather=0)[0]
    soft = paste_faces(painting, faces, bright, feather=20)[0]
    auto = paste_faces(painting, faces, bright)[0]
    mask = face_mask(faces[0], hw)
    edge = mask & ~face_mask(faces[0], hw, grow=-20)
    assert np.allclose(hard[mask], 0.9)
    assert (soft[edge] < 0.9 - 1e-3).any() and (soft[~mask] == painting[~mask]).all()
    core = face_mask(faces[0], hw, grow=-21)
    assert np.allclose(soft[core], 0.9)
    assert not np.array_equal(auto, hard)  # the default feathers
    # Colour match: a wrong-coloured face gets the original region's mean colour.
    tinted = np.clip(crop_faces(painting, faces) * np.array([0.5, 1.2, 1.6], np.float32), 0, 1)[:, None]
    for space in ("lab", "rgb"):
        matched = paste_faces(painting, faces, tinted, feather=0, color_match=space)[0]
        plain = paste_faces(painting, faces, tinted, feather=0)[0]
        err_matched = np.abs(matched[mask].mean(0) - painting[mask].mean(0)).max()
        err_plain = np.abs(plain[mask].mean(0) - painting[mask].mean(0)).max()
        assert err_matched < 0.02 < err_plain


def test_overlapping_faces_composite_in_defined_order():
    image = np.zeros((200, 300, 3), np.float32)
    faces = make_faces((200, 300), [(60, 60, 120, 120), (90, 70, 140, 120)], size=64)
    red = np.zeros((1, 64, 64, 3), np.float32)
    red[..., 0] = 1
    blue = np.zeros((1, 64, 64, 3), np.float32)
    blue[..., 2] = 1
    anim = np.stack([red, blue])
    out = paste_faces(image, faces, anim, ratio=0.5, feather=0)[0]
    assert out[95, 110, 2] == 1 and out[95, 110, 0] == 0  # later face on top
    out = paste_faces(image, faces, anim, ratio=0.5, feather=0, order="smallest_on_top")[0]
    assert out[95, 110, 2] == 1  # the second face is smaller, so it stays on top
    out = paste_faces(image, faces[::-1], anim[::-1], ratio=0.5, feather=0)[0]
    assert out[95, 110, 0] == 1


def test_frames_input_chains_groups_and_keeps_resolution(painting):
    hw = painting.shape[:2]
    faces = make_faces(hw, PAINTING_BOXES, size=64)
    t = 3
    anim = np.random.default_rng(0).random((5, t, 64, 64, 3), dtype=np.float32)
    once = paste_faces(painting, faces, anim)
    first = paste_faces(painting, faces[:2], anim[:2])
    chained = paste_faces(first, faces[2:], anim[2:])
    assert once.shape == chained.shape == (t, 900, 1200, 3)
    assert np.allclose(once, chained)
    # a lone face with shape="rect" replaces its whole window (the seed's single-face paste)
    rect = paste_faces(painting, faces[:1], anim[:1], shape="rect")
    x1, y1, x2, y2 = faces[0].crop_box
    assert not np.allclose(rect[0, y1:y2, x1:x2], painting[y1:y2, x1:x2])
    assert np.array_equal(rect[0, : y1 - 1], painting[: y1 - 1])


def test_bad_paste_input_errors(painting):
    faces = make_faces(painting.shape[:2], PAINTING_BOXES[:2], size=64)
    anim = np.zeros((2, 2, 64, 64, 3), np.float32)
    for ratio in (0.05, 1.5):
        with pytest.raises(InputError, match="ratio .* out of range; use 0.1 to 1.0"):
            paste_faces(painting, faces, anim, ratio=ratio)
    paste_faces(painting, faces, anim, ratio=1.0)  # the whole accepted range works
    paste_faces(painting, faces, anim, ratio=0.1)
    with pytest.raises(InputError, match="no faces"):
        paste_faces(painting, [], anim)
    with pytest.raises(InputError, match=r"expected \[N,T,S,S,3\]"):
        paste_faces(painting, faces, anim[:1])
    with pytest.raises(InputError, match="RGBA"):
        paste_faces(np.zeros((900, 1200, 4), np.float32), faces, anim)
    with pytest.raises(InputError, match="16x16"):
        paste_faces(np.zeros((16, 16, 3), np.float32), faces, anim)
    with pytest.raises(InputError, match="frames but 2 animated"):
        paste_faces(np.zeros((3, 900, 1200, 3), np.float32), faces, anim)
    with pytest.raises(InputError, match="feather"):
        paste_faces(painting, faces, anim, feather=-1)
    with pytest.raises(InputError, match="color_match"):
        paste_faces(painting, faces, anim, color_match="hsv")
    gray = paste_faces(painting.mean(axis=2), faces, anim)  # grayscale becomes RGB
    assert gray.shape == (2, 900, 1200, 3)
