"""Faces: detect (or take by hand), crop the way the model expects, paste animated faces back."""

from ..images import as_rgb_float
from .boxes import box_iou, parse_boxes
from .crops import (
    CROP_MODES,
    FaceRecord,
    crop_driving_frames,
    crop_faces,
    cut_window,
    driving_window,
    make_faces,
    paddlegan_window,
    square_window,
)
from .detect import (
    FaceDetector,
    FaceNotFoundError,
    detect_faces,
    detect_faces_batch,
    find_detector_weights,
    load_face_detector,
)
from .paste import paste_faces
from .select import parse_face_numbers, select_faces

__all__ = [
    "CROP_MODES",
    "FaceDetector",
    "FaceNotFoundError",
    "FaceRecord",
    "as_rgb_float",
    "box_iou",
    "crop_driving_frames",
    "crop_faces",
    "cut_window",
    "detect_faces",
    "detect_faces_batch",
    "driving_window",
    "find_detector_weights",
    "load_face_detector",
    "make_faces",
    "paddlegan_window",
    "parse_boxes",
    "parse_face_numbers",
    "paste_faces",
    "select_faces",
    "square_window",
]
