"""The nodes' own helpers, without ComfyUI: image conversions, the error wording, and the preview
drawing (numbered boxes, keypoint dots)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kit import load_node_module

from fom_pipeline.errors import InputError
from fom_pipeline.faces import make_faces

common = load_node_module("common")
draw = load_node_module("draw")


def test_to_numpy_drops_alpha_and_to_image_clamps_onto_the_cpu():
    rgba = torch.rand(2, 4, 5, 4, dtype=torch.float64)
    array = common.to_numpy(rgba)
    assert array.shape == (2, 4, 5, 3) and array.dtype == np.float32 and array.flags.c_contiguous
    assert np.allclose(array, rgba[..., :3].numpy())
    image = common.to_image(np.array([[[[-0.5, 0.25, 1.5]]]]))
    assert image.dtype == torch.float32 and image.device.type == "cpu"
    assert image.flatten().tolist() == [0.0, 0.25, 1.0]


def test_engine_errors_become_one_line_node_errors_in_the_nodes_words():
    with pytest.raises(common.FOMNodeError) as info:
        with common.engine_errors("FOM Paste Faces"):
            raise InputError("ratio 2 is out of range", cli="use --ratio 0.4", node="set ratio to 0.4")
    assert str(info.value) == "FOM Paste Faces: ratio 2 is out of range (set ratio to 0.4)"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(KeyError):  # not the engine's: passes through untouched
        with common.engine_errors("FOM Paste Faces"):
            raise KeyError("x")


def test_draw_faces_outlines_each_face_in_its_colour_and_keeps_the_rest():
    image = np.full((200, 300, 3), 0.5, np.float32)
    faces = make_faces((200, 300), [(40, 60, 100, 120), (180, 60, 240, 120)], size=64)
    out = draw.draw_faces(image, faces)
    assert out.shape == image.shape and out.dtype == np.float32
    for i, face in enumerate(faces):
        x1, y1, x2, y2 = (round(v) for v in face.box)
        edge = out[(y1 + y2) // 2, x2]  # the middle of the box's right side
        assert np.allclose(edge * 255, draw.color(i), atol=1)
        assert np.allclose(out[(y1 + y2) // 2, (x1 + x2) // 2], 0.5, atol=1 / 255)  # the face is not painted over
    assert np.allclose(out[195, 150], 0.5, atol=1 / 255) and (image == 0.5).all()  # far from any face; input untouched


def test_draw_keypoints_puts_each_dot_where_the_coordinates_say():
    images = np.zeros((2, 97, 193, 3), np.float32)
    values = np.array([[[-1.0, -1.0], [0.0, 0.0]], [[1.0, 1.0], [0.5, -0.5]]])
    out = draw.draw_keypoints(images, values, radius=2)
    assert out.shape == images.shape
    assert np.allclose(out[0, 48, 96] * 255, draw.color(1), atol=1)  # (0, 0) is the centre
    assert np.allclose(out[0, 0, 0] * 255, draw.color(0), atol=1)  # (-1, -1) is the top left pixel
    assert np.allclose(out[1, 96, 192] * 255, draw.color(0), atol=1)
    assert np.allclose(out[1, 24, 144] * 255, draw.color(1), atol=1)  # x 0.5 -> 144, y -0.5 -> 24
    assert (out[0, 48, 40] == 0).all()  # away from the dots nothing changes
