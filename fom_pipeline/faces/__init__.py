"""Faces: detect (or take by hand), crop the way the model expects, paste animated faces back."""

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
    NoFaceError,
    box_iou,
    detect_faces,
    detect_faces_batch,
    load_face_detector,
    parse_boxes,
    select_faces,
)
from .images import as_rgb_float
from .paste import paste_faces

__all__ = [
    "CROP_MODES",
    "FaceDetector",
    "FaceNotFoundError",
    "FaceRecord",
    "NoFaceError",
    "as_rgb_float",
    "box_iou",
    "crop_driving_frames",
    "crop_faces",
    "cut_window",
    "detect_faces",
    "detect_faces_batch",
    "driving_window",
    "load_face_detector",
    "make_faces",
    "paddlegan_window",
    "parse_boxes",
    "paste_faces",
    "select_faces",
    "square_window",
]
