"""Face records, crop windows (square and the seed's paddlegan window) and the fixed driving window."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from faces_helpers import DRIVING_UNCROPPED, PAINTING_BOXES, SkinHeadDetector
from kit import PAINTING, read_rgb, read_video

from fom_pipeline.errors import InputError
from fom_pipeline.faces import (
    FaceRecord,
    crop_driving_frames,
    crop_faces,
    driving_window,
    make_faces,
    paddlegan_window,
    parse_face_numbers,
    select_faces,
)


@pytest.fixture(scope="module")
def painting():
    return read_rgb(PAINTING)


def seed_window(rect, h, w):
    """The seed's arithmetic written out by hand from PaddleGAN's extract_bbox, for comparison."""
    x1, y1, x2, y2 = rect
    bh, bw = y2 - y1, x2 - x1
    cy, cx = y1 + int(bh / 2), x1 + int(bw / 2)
    m = max(bh, bw)
    return (max(0, cx - int(0.8 * m)), max(0, cy - m), min(w, cx + int(0.8 * m)), min(h, cy + m))


def test_paddlegan_window_reproduces_seed_numbers(painting):
    h, w = painting.shape[:2]
    # Worked example: box 195,180,310,300 -> bh 120, bw 115, cy 240, cx 252, m 120, 0.8m -> 96.
    assert paddlegan_window((195, 180, 310, 300), (h, w)) == (156, 120, 348, 360)
    # Float detector boxes are truncated after clipping at 0, odd sizes use int(x / 2), edges clip.
    cases = [
        (195.7, 180.2, 310.9, 300.99),
        (-12.5, 30.4, 80.6, 111.1),  # clipped at 0 first, then the window clips at the left edge
        (1085.3, 280.8, 1180.2, 395.5),
        (1150.0, 820.0, 1199.0, 899.0),  # near the bottom-right corner
        (401.0, 305.0, 504.0, 441.0),  # odd width and height
    ]
    for box in cases:
        ints = tuple(int(v) for v in np.clip(box, 0, None))
        assert paddlegan_window(box, (h, w)) == seed_window(ints, h, w), box
    faces = make_faces((h, w), PAINTING_BOXES, crop_mode="paddlegan", size=256)
    for face, box in zip(faces, PAINTING_BOXES, strict=True):
        assert face.crop_box == seed_window(tuple(int(v) for v in box), h, w)
        assert face.mode == "paddlegan"


def test_square_window_is_centred_square_and_padded(painting):
    h, w = painting.shape[:2]
    faces = make_faces((h, w), [(1100, 800, 1190, 895)], crop_scale=2.0, size=128)
    (face,) = faces
    x1, y1, x2, y2 = face.crop_box
    assert x2 - x1 == y2 - y1 == 190  # 2.0 x max(90, 95)
    assert (x1 + x2) / 2 == pytest.approx(1145, abs=1) and (y1 + y2) / 2 == pytest.approx(847.5, abs=1)
    assert x2 > w and y2 > h  # runs past the border: padded, not shifted or squeezed
    crop = crop_faces(painting, faces)
    assert crop.shape == (1, 128, 128, 3) and crop.dtype == np.float32
    # The padded right edge repeats the last image column (no black bars).
    inside = int(round((w - x1) * 128 / 190))
    assert np.abs(crop[0, :, -1] - crop[0, :, inside - 2]).max() < 0.08


def test_crop_transform_maps_box_back(painting):
    h, w = painting.shape[:2]
    for mode in ("square", "paddlegan"):
        for face in make_faces((h, w), PAINTING_BOXES, crop_mode=mode, size=256):
            corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]])
            back = face.crop_to_image(face.image_to_crop(corners))
            assert np.allclose(back, corners)
            inside = face.image_to_crop(corners)
            assert (inside >= 0).all() and (inside <= 256).all()


def test_face_record_roundtrips_as_plain_data(painting):
    faces = make_faces(painting.shape[:2], PAINTING_BOXES, scores=[0.9, 0.8, 0.7, 0.95, 0.6], size=512)
    for face in faces:
        again = FaceRecord.from_dict(face.to_dict())
        assert again == face
        assert pickle.loads(pickle.dumps(face)) == face
    assert faces[3].score == 0.95 and faces[0].size == 512


def test_crops_of_the_five_faces_hold_the_faces(painting):
    faces = make_faces(painting.shape[:2], PAINTING_BOXES, size=256)
    crops = crop_faces(painting, faces)
    assert crops.shape == (5, 256, 256, 3)
    # Each face centre (skin, lit) is brighter than the dark clothes at the crop's bottom corners.
    centre = crops[:, 112:144, 112:144].mean(axis=(1, 2, 3))
    corners = crops[:, -20:, :20].mean(axis=(1, 2, 3))
    assert (centre > corners + 0.1).all()


def test_bad_boxes_and_images_get_clear_errors(painting):
    hw = painting.shape[:2]
    with pytest.raises(InputError, match="outside the 1200x900 image"):
        make_faces(hw, [(1300, 10, 1400, 100)])
    with pytest.raises(InputError, match="empty"):
        make_faces(hw, [(100, 100, 50, 150)])
    with pytest.raises(InputError, match="no face boxes"):
        make_faces(hw, [])
    with pytest.raises(InputError, match="crop_mode"):
        make_faces(hw, PAINTING_BOXES, crop_mode="round")
    faces = make_faces(hw, PAINTING_BOXES[:1])
    with pytest.raises(InputError, match="RGBA"):
        crop_faces(np.zeros((900, 1200, 4), np.float32), faces)
    with pytest.raises(InputError, match="16x16"):
        crop_faces(np.zeros((16, 16, 3), np.float32), faces)
    with pytest.raises(InputError, match="detect faces on this image"):
        crop_faces(np.zeros((300, 400, 3), np.float32), faces)
    gray = painting.mean(axis=2)  # grayscale is converted to RGB, not refused
    crop = crop_faces(gray, faces)
    assert crop.shape == (1, 256, 256, 3) and np.allclose(crop[..., 0], crop[..., 2])


def test_select_faces_dedupes_keeps_larger_and_orders():
    dets = [
        (10, 10, 50, 50, 0.9),
        (12, 12, 56, 56, 0.8),  # overlaps the first (IoU > 0.3) and is larger: it wins
        (200, 20, 300, 120, 0.95),
        (100, 300, 130, 330, 0.7),
        (400, 400, 405, 405, 0.99),  # tiny
        (500, 10, 560, 70, 0.3),  # low score
    ]
    faces = select_faces(dets, threshold=0.5, min_size=10)
    assert [f[0] for f in faces] == [(12, 12, 56, 56), (100, 300, 130, 330), (200, 20, 300, 120)]
    largest = select_faces(dets, threshold=0.5, min_size=10, order="largest")
    assert largest[0][0] == (200, 20, 300, 120)
    top = select_faces(dets, threshold=0.5, min_size=10, order="top_to_bottom")
    assert [f[0][1] for f in top] == [12, 20, 300]
    assert len(select_faces(dets, threshold=0.5, max_faces=2)) == 2
    with pytest.raises(InputError, match="order"):
        select_faces(dets, order="random")


def test_fixed_driving_window_follows_head_on_lp_driving():
    frames = read_video(DRIVING_UNCROPPED)
    detections = SkinHeadDetector().detect(frames)
    boxes = np.array([d[0][:4] for d in detections])
    # The stand-in really follows the head: its box is a face-sized box near the frame centre.
    assert ((boxes[:, 2] - boxes[:, 0]) > 200).all() and ((boxes[:, 2] - boxes[:, 0]) < 330).all()
    assert (boxes[:, 0] > 90).all() and (boxes[:, 2] < 430).all() and (boxes[:, 1] < 160).all()
    # Drop some frames to prove misses are bridged.
    with_misses = [None if i % 7 == 3 else d for i, d in enumerate(detections)]
    window = driving_window(with_misses, frames.shape[1:3])
    x1, y1, x2, y2 = window
    assert x2 - x1 == y2 - y1
    assert window == driving_window(detections, frames.shape[1:3])  # misses change nothing here
    for box in boxes:  # the one fixed window holds the head in every frame
        assert x1 <= box[0] and y1 <= box[1] and box[2] <= x2 and box[3] <= y2
    crops = crop_driving_frames(frames[::8], window, 256)
    assert crops.shape == (len(frames[::8]), 256, 256, 3)
    # The face is in the middle of every crop: skin-red beats green there.
    middle = crops[:, 100:156, 100:156]
    assert (middle[..., 0].mean(axis=(1, 2)) > middle[..., 1].mean(axis=(1, 2)) + 0.05).all()
    with pytest.raises(InputError, match="no face found in any driving frame"):
        driving_window([None, []], (512, 512))


def test_driving_window_stays_inside_when_it_fits():
    boxes = [(10, 10, 60, 60), (20, 15, 70, 65)]
    window = driving_window(boxes, (400, 400), scale=1.5)
    assert window[0] >= 0 and window[1] >= 0  # shifted in, not padded
    assert window[2] - window[0] == 90


@pytest.mark.parametrize(("text", "expected"), [("1", [0]), ("1,3", [0, 2]), ("2-4", [1, 2, 3]),
                                                ("5; 1", [4, 0]), (" 1 , , 2 ", [0, 1])])
def test_face_indices_are_one_based_as_in_the_preview(text, expected):
    assert parse_face_numbers(text, 5) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "no face indices given; write indices like 1,3 or 2-4"),
    ("x", "face index 'x' is not a number"),
    ("0", "face index 0 is out of range; there are 5 faces (numbered 1..5)"),
    ("4-6", "face index 6 is out of range"),
    ("4-2", "face range '4-2' runs backwards; write it as 2-4"),
    ("1-20000000", "face index 20000000 is out of range; there are 5 faces (numbered 1..5)"),
])
def test_bad_face_indices_name_the_index_and_the_range(text, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_face_numbers(text, 5)


def test_a_huge_face_range_is_refused_without_being_expanded():
    """``1-20000000`` once became a list of twenty million numbers (about 1 GB in ComfyUI) before the check."""
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(InputError, match="face index 20000000 is out of range"):
        parse_face_numbers("1-20000000", 3)
    assert parse_face_numbers("1-3," * 1000, 3) == [0, 1, 2] * 1000  # each part adds at most 3
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2**20, peak


def test_a_box_larger_than_the_picture_is_cut_to_it_and_its_crop_stays_small(painting):
    """A 3000 px box on the 1200x900 painting once made a 6000 px window (432 MB a crop, 4 GB in ComfyUI)."""
    import tracemalloc

    (face,) = make_faces(painting.shape[:2], [(0, 0, 3000, 3000)], size=256)
    assert face.box == (0, 0, 1200, 900)
    assert face.crop_box[2] - face.crop_box[0] == 2400  # crop_scale 2 x the picture's longer side
    (wide,) = make_faces(painting.shape[:2], [(-5000, 100, 5000, 300)], size=256)
    assert wide.box == (0, 100, 1200, 300)  # only the side longer than the picture is cut
    tracemalloc.start()
    crop = crop_faces(painting, make_faces(painting.shape[:2], [(-1e9, -1e9, 1e9, 1e9)], size=256))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert crop.shape == (1, 256, 256, 3)
    assert peak < 150 * 2**20, f"{peak / 2**20:.0f} MiB"
    with pytest.raises(InputError, match=r"crop_scale 50 is out of range; use above 0 to 4"):
        make_faces(painting.shape[:2], PAINTING_BOXES, crop_scale=50)


def test_a_driving_window_far_larger_than_the_frames_is_cut_to_them():
    from fom_pipeline.pipeline import CroppedFrames
    from fom_pipeline.streams import FrameArray

    frames = FrameArray(np.random.default_rng(0).random((3, 90, 120, 3), dtype=np.float32), fps=25)
    cropped = CroppedFrames(frames, (-100000, 10, 100000, 80), 64)
    assert cropped.window == (0, 10, 120, 80)
    assert next(cropped.chunks(3)).shape == (3, 64, 64, 3)
    with pytest.raises(InputError, match=r"driving window \(200, 0, 300, 50\) lies outside the 120x90 frames"):
        CroppedFrames(frames, (200, 0, 300, 50), 64)
