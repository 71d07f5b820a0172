"""Picture batches checked the same way everywhere (detection, cropping, pasting, the model, frame
sources): one rule, one clear error instead of a deep trace.

The rule: pictures are [H,W,C] (or [B,H,W,C] batches) with C = 3 (RGB) or 1 (grey, also given as
[H,W] / [B,H,W]: made RGB by repeating the channel, lossless); RGBA is refused, because dropping or
flattening the alpha channel is the caller's choice (front ends drop it when they read a file or a
ComfyUI IMAGE); sides of at least 32 pixels; uint8, or float in [0,1].
"""

from __future__ import annotations

import numpy as np
import torch

from .arrays import as_numpy
from .errors import InputError

MIN_IMAGE_SIDE = 32  # below this no face is big enough to animate (S3FD's smallest anchor is 16 px)


def check_layout(shape: tuple[int, ...], what: str = "image", batched: bool = False) -> bool:
    """Check pictures of ``shape`` against the rule (see the module doc); True when they are grey and
    must be made RGB (``shape`` without a channel axis, or with one channel)."""
    base = 3 if batched else 2
    expected = "RGB images shaped [B,H,W,3]" if batched else "an RGB image shaped [H,W,3]"
    if len(shape) not in (base, base + 1):
        raise InputError(f"{what} has shape {tuple(shape)}; expected {expected} (or grayscale)")
    channels = shape[-1] if len(shape) == base + 1 else 1
    if channels == 4:
        raise InputError(
            f"{what} is RGBA (4 channels), not {expected}; drop the alpha channel (image[..., :3]) or "
            "flatten it onto a background first"
        )
    if channels not in (1, 3):
        raise InputError(f"{what} has {channels} channels; expected {expected} (or grayscale, 1 channel)")
    if batched and shape[0] == 0:
        raise InputError(f"{what} is empty (0 frames)")
    height, width = shape[base - 2], shape[base - 1]
    if min(height, width) < MIN_IMAGE_SIDE:
        size = f"are {width}x{height} pixels" if batched else f"is only {width}x{height} px"
        raise InputError(f"{what} {size}; faces need pictures of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}")
    return channels == 1


def as_rgb_float(image, what: str = "image", batched: bool = False) -> np.ndarray:
    """Return float32 RGB in [0,1], shape [H,W,3] (or [B,H,W,3] when ``batched``).

    Accepts numpy arrays or torch tensors, float in [0,1] or uint8, checked by :func:`check_layout`.
    """
    array = as_numpy(image)
    grey = check_layout(array.shape, what, batched)
    if grey:
        lead = array.shape[:3] if batched else array.shape[:2]
        array = np.repeat(array.reshape(*lead, 1), 3, axis=-1)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{what} has dtype {array.dtype}; expected float32 in [0,1] or uint8")
    return np.ascontiguousarray(array, dtype=np.float32)


def as_rgb_tensor(images, what: str = "images") -> torch.Tensor:
    """A batch [B,H,W,3] (or one picture [H,W,3]) as a float tensor in [0,1], on the device it is on
    (the model's input), checked by :func:`check_layout`."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{what} must be an image array [B,H,W,3], got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if check_layout(tuple(images.shape), what, batched=True):
        images = images.reshape(*images.shape[:3], 1).expand(*images.shape[:3], 3)
    if not images.is_floating_point():
        images = images.float() / 255.0
    return images.float()
