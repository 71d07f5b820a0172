"""fom_pipeline: the First Order Motion Model engine (no ComfyUI imports).

Public API: ``load_model`` -> ``FOMModel`` (``extract_keypoints``, ``animate``, ``animate_batches``),
``Keypoints``, ``normalize_keypoints``, ``find_best_frame``, and the checkpoint converter.
"""

from .checkpoints import convert, read_checkpoint
from .errors import CheckpointError, FOMError, InputError, WeightsMissingError
from .keypoints import Keypoints, find_best_frame, normalize_keypoints
from .model import FOMModel, load_model

__all__ = [
    "CheckpointError",
    "FOMError",
    "FOMModel",
    "InputError",
    "Keypoints",
    "WeightsMissingError",
    "convert",
    "find_best_frame",
    "load_model",
    "normalize_keypoints",
    "read_checkpoint",
]
