"""Input checks shared by detection, cropping and pasting: one clear error instead of a deep trace."""

from __future__ import annotations

import numpy as np

from ..arrays import as_numpy
from ..errors import InputError

MIN_IMAGE_SIDE = 32  # below this no face is big enough to animate (S3FD's smallest anchor is 16 px)


def as_rgb_float(image, what: str = "image", batched: bool = False) -> np.ndarray:
    """Return float32 RGB in [0,1], shape [H,W,3] (or [B,H,W,3] when ``batched``).

    Accepts numpy arrays or torch tensors, float in [0,1] or uint8. Grayscale ([H,W] or one channel)
    is converted to RGB by repeating the channel (lossless); RGBA is refused because dropping or
    flattening the alpha channel is the caller's choice.
    """
    array = as_numpy(image)
    base = 3 if batched else 2
    if array.ndim == base:
        array = array[..., None]
    if array.ndim != base + 1:
        shape = "[B,H,W,3]" if batched else "[H,W,3]"
        raise InputError(f"{what} has shape {tuple(array.shape)}; expected {shape}")
    channels = array.shape[-1]
    if channels == 1:
        array = np.repeat(array, 3, axis=-1)
    elif channels == 4:
        raise InputError(
            f"{what} is RGBA (4 channels); drop the alpha channel (image[..., :3]) or flatten it "
            "onto a background first"
        )
    elif channels != 3:
        raise InputError(f"{what} has {channels} channels; expected RGB (3) or grayscale (1)")
    height, width = array.shape[-3], array.shape[-2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise InputError(
            f"{what} is only {width}x{height} px; faces need an image at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}"
        )
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{what} has dtype {array.dtype}; expected float32 in [0,1] or uint8")
    return np.ascontiguousarray(array, dtype=np.float32)
