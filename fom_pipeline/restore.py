"""Face restoration of the animated crops, a batch at a time, while the video renders.

A restoration model is any spandrel ``ImageModelDescriptor`` (what ComfyUI's "Load Upscale Model"
gives, and what :func:`load_restore_model` reads for the command line): face restorers such as
GFPGAN, RestoreFormer or CodeFormer, or a general restoration/upscaling model. The engine never
imports spandrel to run one; it only uses the descriptor's call (NCHW float in [0, 1]), ``scale``,
``purpose``, ``size_requirements`` and ``to``.

How a batch of crops [..., S, S, 3] is restored (:class:`FaceRestorer`):

- each crop is resized to the size the model runs at: face restorers (spandrel purpose ``FaceSR``)
  run at 512 px, the aligned-face size they are all trained at (GFPGAN accepts nothing else);
  other models run at the crop size. Either is raised to the model's minimum and rounded up to
  its ``multiple_of``;
- the model runs on a few crops at a time (``batch_size``), so its activations stay small;
- the result (``scale`` times larger for upscalers) is resized back to S x S, so the paste sees
  crops of the size it expects.

Only the batch being pasted is ever restored: nothing holds the whole video.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import as_numpy, as_tensor
from .errors import CheckpointError, FOMError, InputError

FACE_RESTORE_SIZE = 512
DEFAULT_RESTORE_BATCH = 4
RESTORE_EXTENSIONS = (".safetensors", ".pth", ".pt", ".ckpt")


class MissingPackageError(FOMError):
    """An optional package a requested feature needs is not installed."""


def run_size(model, size: int) -> int:
    """The side (px) ``model`` runs at for crops of ``size`` px (see the module docstring)."""
    target = FACE_RESTORE_SIZE if getattr(model, "purpose", None) == "FaceSR" else int(size)
    req = getattr(model, "size_requirements", None)
    minimum = int(getattr(req, "minimum", 0) or 0)
    multiple = max(1, int(getattr(req, "multiple_of", 1) or 1))
    return int(math.ceil(max(target, minimum) / multiple) * multiple)


def _check_model(model) -> None:
    if not callable(model) or not hasattr(model, "to"):
        raise InputError(f"the restoration model is a {type(model).__name__}, not an image model; connect "
                         "Load Upscale Model (a face restorer such as GFPGAN or RestoreFormer)")
    for side in ("input_channels", "output_channels"):
        channels = getattr(model, side, 3)
        if channels != 3:
            raise InputError(f"the restoration model has {channels} {side.split('_')[0]} channels; use an RGB "
                             "model (3 in, 3 out), e.g. GFPGAN or RestoreFormer")


class FaceRestorer:
    """Applies a restoration model to face crops and resizes the result back (module docstring).

    ``device``: where the model runs (default: where it is); it is moved there on first use and
    back by :meth:`release`. ``interrupt()`` is called between model calls and may raise to stop.
    ``on_start()`` runs before the first batch of each render (a host's own model loading).
    """

    def __init__(self, model, device: str | torch.device | None = None, batch_size: int = DEFAULT_RESTORE_BATCH,
                 interrupt: Callable[[], None] | None = None, on_start: Callable[[], None] | None = None):
        _check_model(model)
        self.model = model
        self.device = torch.device(device) if device is not None else None
        self.batch_size = max(1, int(batch_size))
        self.interrupt = interrupt
        self.on_start = on_start
        self._home: torch.device | None = None
        self._started = False

    def _prepare(self) -> torch.device:
        if not self._started and self.on_start is not None:
            self.on_start()
        self._started = True
        here = getattr(self.model, "device", None)
        if self.device is not None and here is not None and torch.device(here) != self.device:
            self._home = self._home or torch.device(here)
            self.model.to(self.device)
        if hasattr(self.model, "eval"):
            self.model.eval()
        return self.device or torch.device(here or "cpu")

    def release(self) -> None:
        """Move the model back where it was found (ComfyUI keeps loaded models on the CPU)."""
        self._started = False
        if self._home is not None:
            self.model.to(self._home)
            self._home = None

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Restore float crops [..., S, S, 3] in [0, 1]; returns float32 of the same shape."""
        crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim < 3 or crops.shape[-1] != 3 or crops.shape[-2] != crops.shape[-3]:
            raise InputError(f"face crops have shape {tuple(crops.shape)}; expected [..., S, S, 3]")
        lead, size = crops.shape[:-3], crops.shape[-2]
        flat = crops.reshape(-1, size, size, 3)
        device = self._prepare()
        dtype = getattr(self.model, "dtype", torch.float32)
        side = run_size(self.model, size)
        out = np.empty_like(flat)
        for start in range(0, len(flat), self.batch_size):
            if self.interrupt is not None:
                self.interrupt()
            # contiguous NCHW: some architectures (GFPGAN) .view() their features
            x = as_tensor(flat[start : start + self.batch_size]).to(device).permute(0, 3, 1, 2).contiguous()
            if side != size:
                x = F.interpolate(x, size=(side, side), mode="bicubic", align_corners=False).clamp_(0.0, 1.0)
            y = self.model(x.to(dtype)).float()
            if y.shape[-1] != size or y.shape[-2] != size:
                y = F.interpolate(y, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
            out[start : start + len(x)] = as_numpy(y.clamp_(0.0, 1.0).permute(0, 2, 3, 1))
        return out.reshape(*lead, size, size, 3)


class RestoredAnimation:
    """An animation (FaceAnimation or FramesAnimation) whose batches pass through a FaceRestorer:
    the same faces, frame count, timing and audio, each batch restored when it is read."""

    def __init__(self, animation, restorer: FaceRestorer):
        self.animation = animation
        self.restorer = restorer
        self.fps, self.audio = animation.fps, animation.audio
        self.batch_size, self.size = animation.batch_size, animation.size

    @property
    def faces(self) -> int:
        return self.animation.faces

    @property
    def frame_count(self) -> int:
        return self.animation.frame_count

    def batches(self, faces: Sequence[int] | None = None) -> Iterator[np.ndarray]:
        try:
            for batch in self.animation.batches(faces):
                yield self.restorer(batch)
        finally:
            self.restorer.release()


def load_restore_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """A restoration model file (GFPGAN, RestoreFormer, ...) through spandrel, read without running
    code from it (safetensors, or torch's weights-only reader); returns spandrel's descriptor."""
    try:
        import spandrel
    except ImportError:
        raise MissingPackageError("face restoration needs the spandrel package, which reads GFPGAN, "
                                  "RestoreFormer and other restoration models: pip install spandrel") from None
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"restoration model not found: {path} (check the path)")
    if path.suffix.lower() not in RESTORE_EXTENSIONS:
        raise InputError(f"restoration model {path.name} is not a {', '.join(RESTORE_EXTENSIONS)} file")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure means the same thing to the user
        raise CheckpointError(f"restoration model {path.name} is not a readable weights file "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"restoration model {path.name} holds a {type(state).__name__}, not weights")
    try:
        model = spandrel.ModelLoader().load_from_state_dict(spandrel.canonicalize_state_dict(state))
    except spandrel.UnsupportedModelError:
        raise CheckpointError(f"restoration model {path.name} is of an architecture spandrel "
                              f"{spandrel.__version__} does not know; use e.g. GFPGAN v1.4 or RestoreFormer") from None
    if not isinstance(model, spandrel.ImageModelDescriptor):
        raise CheckpointError(f"restoration model {path.name} is a {model.architecture.name} model that needs a "
                              "mask; use a single-image face restorer (GFPGAN, RestoreFormer)")
    return model.to(torch.device(device)).eval()
