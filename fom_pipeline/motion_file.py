"""Motion files: a driving video's keypoints saved once and used again without the video.

A small ``.safetensors`` (never a pickle: reading one runs no code), about 240 bytes a frame:

- tensors ``value`` float32 [T, K, 2] and ``jacobian`` [T, K, 2, 2] (the motion as it was used,
  smoothed if it was; smoothing asked for when loading comes on top), ``detector`` [K, 2] (the
  :func:`~fom_pipeline.keypoints.detector_fingerprint` of the model that made them);
- metadata ``format`` = ``fom_motion``, ``version``, ``fps``, ``name`` (the clip's file name),
  ``frames``, ``keypoints``.

A file that is missing, not a safetensors file, a pickle, another kind of safetensors file (model
weights) or damaged is refused with one line naming it, before anything runs from it.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch

from . import atomic
from .errors import InputError
from .inputs import check_input_file
from .keypoints import Keypoints, same_detector
from .options import frame_rate_problem

FORMAT = "fom_motion"
VERSION = 1
SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 1 << 20  # a motion file's header is a few hundred bytes
HOW_TO_MAKE = "make one with --save_motion or the FOM Save Motion node"
# Keypoints are crop coordinates in -1..1 (softmax-weighted averages of the grid); jacobians are the
# local affine maps around them, of order 1. Anything far outside is a damaged or made-up file.
MAX_KEYPOINT = 2.0
MAX_JACOBIAN = 1000.0


def check_motion_output(path: str | os.PathLike, overwrite: bool = False, what: str = "motion file") -> Path:
    """Where a motion file will be written: a ``.safetensors`` name, not an existing file unless ``overwrite``,
    in a folder that can be written (made now: checked before any work)."""
    path = Path(path).expanduser()
    if path.suffix != SUFFIX:
        raise InputError(f"{what} {path} must end in {SUFFIX}, e.g. {path.with_suffix(SUFFIX)}")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name ending in {SUFFIX}")
    return atomic.check_target(path, overwrite, what)


def save_motion(path: str | os.PathLike, driving, overwrite: bool = False) -> Path:
    """Write ``driving`` (a :class:`~fom_pipeline.pipeline.DrivingKeypoints`) to ``path``, atomically."""
    from safetensors.torch import save

    path = check_motion_output(path, overwrite)
    kp = driving.keypoints
    tensors = {key: tensor.detach().float().cpu().contiguous()
               for key, tensor in (("value", kp.value), ("jacobian", kp.jacobian), ("detector", driving.detector))
               if tensor is not None}
    metadata = {"format": FORMAT, "version": str(VERSION), "fps": repr(float(driving.fps)),
                "name": str(driving.name or ""), "frames": str(len(kp)), "keypoints": str(kp.value.shape[1])}
    return atomic.write_bytes(path, save(tensors, metadata=metadata), overwrite, "motion file")


def _read_header(path: str) -> dict:
    """The safetensors JSON header, checked by hand first so a foreign file gets a plain answer."""
    header = None
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
            if len(head) == 8:
                (length,) = struct.unpack("<Q", head)
                if length <= min(MAX_HEADER_BYTES, size - 8):
                    try:
                        header = json.loads(f.read(length).decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        header = None
    except OSError as err:
        raise InputError(f"motion file is not readable: {path} ({err.strerror or err})") from None
    if isinstance(header, dict):
        return header
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise InputError(f"{path} is a pickle (or torch.save file), not a motion file; pickles are never loaded "
                         f"because they can run code ({HOW_TO_MAKE})")
    raise InputError(f"{path} is not a motion file (not a .safetensors file; {HOW_TO_MAKE})")


def is_motion_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a motion file (its header says so; nothing else is read)."""
    try:
        return (_read_header(os.fspath(path)).get("__metadata__") or {}).get("format") == FORMAT
    except InputError:
        return False


def _damaged(path: str, why: str) -> InputError:
    return InputError(f"motion file {path} is damaged ({why}); save the motion again (--save_motion or the "
                      "FOM Save Motion node)")


def load_motion(path: str | os.PathLike):
    """A motion file as :class:`~fom_pipeline.pipeline.DrivingKeypoints` (no audio; see the module doc)."""
    from safetensors import safe_open

    from .pipeline import DrivingKeypoints

    path = check_input_file(path, "motion file", readable=False)  # an unreadable file: see _read_header
    meta = _read_header(path).get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise InputError(f"{path} is a .safetensors file but not a motion file (model weights?); {HOW_TO_MAKE}")
    try:
        version = int(meta.get("version", "0"))
        fps = float(meta.get("fps", "nan"))
    except ValueError:
        raise _damaged(path, "unreadable version or fps") from None
    if version > VERSION:
        raise InputError(f"motion file {path} is format version {version}, newer than this pack reads ({VERSION}); "
                         "update the pack")
    fps_problem = frame_rate_problem(meta.get("fps"))
    if fps_problem:
        raise _damaged(path, f"its frame rate {fps_problem}")
    try:
        with safe_open(path, framework="pt") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as err:  # safetensors raises its own error types for a cut or corrupt file
        raise _damaged(path, " ".join(str(err).split()) or type(err).__name__) from None
    value, jacobian, detector = tensors.get("value"), tensors.get("jacobian"), tensors.get("detector")
    if value is None or value.dim() != 3 or value.shape[0] == 0 or value.shape[2] != 2:
        raise _damaged(path, "no keypoints [frames, K, 2]")
    count, num_kp = value.shape[:2]
    if jacobian is not None and tuple(jacobian.shape) != (count, num_kp, 2, 2):
        raise _damaged(path, f"jacobians {tuple(jacobian.shape)} do not match keypoints {tuple(value.shape)}")
    if detector is not None and tuple(detector.shape) != (num_kp, 2):
        raise _damaged(path, "detector fingerprint of the wrong shape")
    if not all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
        raise _damaged(path, "keypoints that are not finite numbers")
    for what, tensor, limit in (("keypoints", value, MAX_KEYPOINT), ("jacobians", jacobian, MAX_JACOBIAN)):
        largest = 0.0 if tensor is None else float(tensor.abs().max())
        if largest > limit:
            raise _damaged(path, f"{what} as large as {largest:.3g}; a model's lie within {limit:g}")
    keypoints = Keypoints(value.float(), None if jacobian is None else jacobian.float())
    return DrivingKeypoints(keypoints, fps, None, name=str(meta.get("name", "")),
                            detector=None if detector is None else detector.float())


def check_motion_model(driving, model, where: str) -> None:
    """Refuse keypoints made by another model's keypoint detector (they would drive the wrong points)."""
    num_kp = int(model.config["common_params"]["num_kp"])
    have = driving.keypoints.value.shape[1]
    if have != num_kp:
        raise InputError(f"{where} has {have} keypoints per frame but the model has {num_kp}; use the model it "
                         "was made with")
    if driving.detector is None:
        return
    from .keypoints import detector_fingerprint

    mine = detector_fingerprint(model)
    if not same_detector(driving.detector, mine):
        gap = float((driving.detector - mine).abs().max())
        raise InputError(f"{where} was made by another model's keypoint detector (its keypoints differ by up to "
                         f"{gap:.2f} on a test picture); keypoints only drive the model that made them: load that "
                         "model, or make the motion again from the video with this one")
