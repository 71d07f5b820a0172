"""Detection wiring: face-alignment's real S3FD network with generated weights, stand-ins, boxes by hand."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from face_alignment.detection.sfd.net_s3fd import s3fd
from faces_helpers import (
    DECOY_LOW,
    DECOY_NEAR,
    DUPLICATE_OF_0,
    NOISY_DETECTIONS,
    PAINTING_BOXES,
    PAINTING_SCORES,
    HandBoxDetector,
)
from kit import PAINTING, read_rgb

from fom_pipeline.errors import CheckpointError, InputError, WeightsMissingError
from fom_pipeline.faces import (
    FaceDetector,
    FaceNotFoundError,
    detect_faces,
    detect_faces_batch,
    load_face_detector,
    make_faces,
    parse_boxes,
    select_faces,
)

FIRE_STRIDE = 16  # the conv5_3 head: anchors every 16 px, 64 px wide
FIRE_SIZE = 64


def s3fd_weights(seed: int = 0) -> dict:
    """Seeded random S3FD backbone; heads set so only the conv5_3 level fires, with zero box offsets.

    Every detection is then exactly a conv5_3 anchor: centre (8 + 16 i, 8 + 16 j), 64x64, score ~1
    - known numbers that prove boxes come back in image pixels.
    """
    torch.manual_seed(seed)
    net = s3fd()
    state = net.state_dict()
    for name, value in state.items():
        if "mbox" in name:
            value.zero_()
        elif name.endswith("weight") and value.ndim == 4:
            value.normal_(0, 0.02)
        else:
            value.uniform_(0, 0.1)
    for name, value in state.items():
        if "mbox_conf.bias" in name:
            value.fill_(-10.0)
            value[0] = 10.0  # background wins everywhere ...
    state["conv5_3_norm_mbox_conf.bias"][:] = torch.tensor([-10.0, 10.0])  # ... but on conv5_3
    return state


@pytest.fixture(scope="module")
def sfd_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sfd") / "s3fd-619a316812.pth"
    torch.save(s3fd_weights(), path)
    return path


@pytest.fixture(scope="module")
def sfd_detector(sfd_path):
    return load_face_detector(weights_path=sfd_path, device="cpu")


@pytest.fixture(scope="module")
def small_painting():
    return cv2.resize(read_rgb(PAINTING), (192, 144), interpolation=cv2.INTER_AREA)


def test_s3fd_state_dict_keys_are_face_alignments():
    keys = set(s3fd().state_dict())
    assert {"conv1_1.weight", "fc7.weight", "conv3_3_norm.weight", "conv7_2_mbox_loc.bias"} <= keys
    assert keys == set(s3fd_weights())


def test_real_s3fd_network_with_generated_weights(sfd_detector, small_painting):
    detector = sfd_detector
    assert isinstance(detector, FaceDetector) and detector.backend == "sfd"
    assert type(detector.backend_detector).__name__ == "SFDDetector"
    found = detector.detect(small_painting[None])
    assert isinstance(found, list) and len(found) == 1 and found[0]
    for det in found[0]:
        assert isinstance(det, tuple) and len(det) == 5
        assert all(isinstance(v, float) for v in det)
        x1, y1, x2, y2, score = det
        assert x2 - x1 == pytest.approx(FIRE_SIZE, abs=1e-3) and y2 - y1 == pytest.approx(FIRE_SIZE, abs=1e-3)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        assert (cx - 8) % FIRE_STRIDE == pytest.approx(0, abs=1e-3)
        assert (cy - 8) % FIRE_STRIDE == pytest.approx(0, abs=1e-3)
        assert 0 <= cx < 192 and 0 <= cy < 144
        assert score > 0.99
    # Batches: the same image twice gives the same boxes twice; [H,W,3] alone works too.
    twice = detector.detect(np.stack([small_painting, small_painting]), batch_size=2)
    assert twice[0] == twice[1] == found[0]
    assert detector.detect(small_painting) == found
    # detect_faces filters, de-duplicates (face-alignment's NMS already ran) and orders left to right
    faces = detect_faces(detector, small_painting, threshold=0.5)
    centres = [(b[0] + b[2]) / 2 for b, _ in faces]
    assert centres == sorted(centres) and len(faces) == len(found[0])
    records = make_faces(small_painting.shape[:2], [b for b, _ in faces], [s for _, s in faces], size=256)
    assert all(r.score > 0.99 for r in records)
    per_frame = detect_faces_batch(detector, np.stack([small_painting] * 2), batch_size=2)
    assert len(per_frame) == 2 and per_frame[0] == per_frame[1]


def test_no_face_is_a_clear_error_or_empty(sfd_detector, small_painting):
    detector = sfd_detector
    with pytest.raises(FaceNotFoundError, match="no face found .* give the faces by hand"):
        detect_faces(detector, small_painting, min_size=500)
    assert detect_faces(detector, small_painting, min_size=500, allow_empty=True) == []
    assert issubclass(FaceNotFoundError, InputError)  # the old alias NoFaceError is gone: one name


def test_hand_boxes_and_stand_in_detector_on_the_painting():
    painting = read_rgb(PAINTING)
    text = "; ".join(",".join(f"{v:g}" for v in box) for box in PAINTING_BOXES)
    boxes = parse_boxes(text)
    assert boxes == PAINTING_BOXES
    # Stand-in with the same .detect interface: the five faces with their own scores, shuffled, plus
    # decoys under the threshold and a better-scoring smaller duplicate of face 0.
    faces = detect_faces(HandBoxDetector(NOISY_DETECTIONS), painting)
    assert faces == [(box, score) for box, score in zip(PAINTING_BOXES, PAINTING_SCORES, strict=True)]


def _picked(faces) -> list:
    """Which of the painting's faces (their index) or decoys came back, in order."""
    names = {box: str(i) for i, box in enumerate(PAINTING_BOXES)}
    names |= {DECOY_LOW[:4]: "low", DECOY_NEAR[:4]: "near", DUPLICATE_OF_0[:4]: "dup"}
    return [names[box] for box, _ in faces]


@pytest.mark.parametrize(
    ("threshold", "max_faces", "order", "expected"),
    [
        # max_faces keeps the largest faces (not the best scores: face 4 scores best, face 0 worst) ...
        (0.5, 1, "left_to_right", ["0"]),
        (0.5, 2, "left_to_right", ["0", "1"]),
        # ... faces 2 and 4 are the same size: the better score (4) goes first; then the order numbers them.
        (0.5, 4, "left_to_right", ["0", "1", "3", "4"]),
        (0.5, 4, "top_to_bottom", ["0", "4", "1", "3"]),
        (0.5, 4, "largest", ["0", "1", "3", "4"]),
        (0.5, 0, "largest", ["0", "1", "3", "4", "2"]),
        (0.5, 0, "top_to_bottom", ["0", "2", "4", "1", "3"]),
        # The threshold comes first: lower it and the big decoy becomes the largest face; a score equal
        # to the threshold is kept.
        (0.25, 1, "left_to_right", ["low"]),
        (0.25, 0, "left_to_right", ["near", "0", "1", "2", "3", "low", "4"]),
        (0.49, 0, "largest", ["near", "0", "1", "3", "4", "2"]),
        # Only faces 1 and 4 and the duplicate score 0.9 or more: face 0 is gone, so its duplicate stays.
        (0.9, 0, "left_to_right", ["dup", "1", "4"]),
    ],
)
def test_threshold_max_faces_and_order(threshold, max_faces, order, expected):
    faces = select_faces(NOISY_DETECTIONS, threshold=threshold, max_faces=max_faces, order=order)
    assert _picked(faces) == expected
    assert all(score >= threshold for _, score in faces)
    # detect_faces is the same selection on the detector's raw boxes.
    image = np.zeros((900, 1200, 3), np.float32)
    via_detector = detect_faces(HandBoxDetector(NOISY_DETECTIONS), image, threshold=threshold,
                                max_faces=max_faces, order=order)
    assert via_detector == faces


def test_detect_faces_batch_is_largest_first_over_the_threshold():
    frames = np.zeros((2, 900, 1200, 3), np.float32)
    per_frame = detect_faces_batch(HandBoxDetector(NOISY_DETECTIONS), frames)
    assert [_picked(f) for f in per_frame] == [["0", "1", "3", "4", "2"]] * 2
    assert detect_faces_batch(HandBoxDetector(NOISY_DETECTIONS), frames, threshold=0.95) == [
        [(PAINTING_BOXES[1], 0.97), (DUPLICATE_OF_0[:4], 0.995), (PAINTING_BOXES[4], 0.99)]
    ] * 2


def test_parse_boxes_errors():
    assert parse_boxes("1,2,3,4\n5.5, 6, 7e1, 8;") == [(1, 2, 3, 4), (5.5, 6, 70, 8)]
    for bad, msg in [
        ("", "no boxes"),
        ("1,2,3", "not x1,y1,x2,y2"),
        ("a,b,c,d", "not x1"),
        ("5,5,1,9", "empty"),
    ]:
        with pytest.raises(InputError, match=msg):
            parse_boxes(bad)


def test_missing_and_broken_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FOM_ALLOW_DOWNLOAD", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsMissingError) as info:
        load_face_detector(models_dir=tmp_path)
    message = str(info.value)
    assert "s3fd-619a316812.pth" in message and str(tmp_path / "face_detection") in message
    assert "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth" in message
    with pytest.raises(WeightsMissingError, match="not found"):
        load_face_detector(weights_path=tmp_path / "nope.pth")
    broken = tmp_path / "broken.pth"
    torch.save({"conv1_1.weight": torch.zeros(1)}, broken)
    with pytest.raises(CheckpointError, match="not usable S3FD weights"):
        load_face_detector(weights_path=broken)
    with pytest.raises(WeightsMissingError, match="blazeface.pth"):
        load_face_detector("blazeface", models_dir=tmp_path)
    with pytest.raises(InputError, match="unknown"):
        load_face_detector("dlib")


def test_weights_found_in_models_folder(tmp_path, monkeypatch, sfd_path):
    monkeypatch.setenv("FOM_ALLOW_DOWNLOAD", "0")
    (tmp_path / "face_detection").mkdir()
    (tmp_path / "face_detection" / "s3fd-619a316812.pth").write_bytes(sfd_path.read_bytes())
    detector = load_face_detector(models_dir=tmp_path)
    assert detector.weights_path == tmp_path / "face_detection" / "s3fd-619a316812.pth"


def test_detector_input_errors(sfd_detector):
    detector = sfd_detector
    with pytest.raises(InputError, match="RGBA"):
        detector.detect(np.zeros((1, 64, 64, 4), np.float32))
    with pytest.raises(InputError, match="16x16"):
        detect_faces(detector, np.zeros((16, 16, 3), np.float32))
