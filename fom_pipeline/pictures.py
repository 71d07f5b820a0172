"""Picture files read from disk: the source photo and a paste mask, each refused in one line when it
cannot be used (missing, a folder, unreadable, not an image, the wrong kind of mask).

The command line reads its --source_image and --mask here; the nodes get pictures from ComfyUI, already
decoded, and check them with :mod:`fom_pipeline.images` like these.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import InputError
from .inputs import check_input_file

MASK_GREY_TOLERANCE = 8  # levels (of 255) the channels of a "grey" colour file may differ by (JPEG noise)


def decode_picture(path: str | os.PathLike, flags: int, what: str, where: str, use: str) -> np.ndarray:
    """A picture file decoded by OpenCV with ``flags``; a missing, unreadable or non-image file is refused
    in one line naming ``what`` it is, ``where`` to look and what to ``use`` instead."""
    import cv2

    path = check_input_file(path, what, where, readable=False)  # an unreadable file: said with its reason below
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise InputError(f"{what} is not readable: {path} ({err.strerror or err})") from None
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise InputError(f"{what} is not an image OpenCV can read: {path} ({use})")
    return image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The source photo as uint8 RGB [H,W,3] (grey made RGB, alpha dropped, 16-bit scaled)."""
    import cv2

    try:
        image = decode_picture(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH, "source image", "check the path",
                               "use a PNG or JPEG")
    except InputError:
        from .video import looks_like_video

        if os.path.isfile(path) and looks_like_video(path):
            raise InputError(f"source image {os.fspath(path)} is a video, not a picture",
                             python="animate its faces with fom_pipeline.video_source",
                             cli="give it with --source_video", node="load it with Load Video") from None
        raise
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[:, :, ::-1])


def read_mask(path: str | os.PathLike, photo_hw: tuple[int, int], flag: str = "--mask") -> np.ndarray:
    """A mask file (the command line's ``flag``) as float32 [H,W] in [0, 1]: the image's grey level,
    white = animated face.

    Colour files must be grey (equal channels); a file with transparency is refused rather than
    guessed at (ComfyUI's Load Image reads transparency as its mask, other tools the opposite).
    The size must be the photo's.
    """
    import cv2

    from .faces.paste import as_mask

    path = os.fspath(path)
    mask = decode_picture(path, cv2.IMREAD_UNCHANGED, "mask", f"check {flag}", "use a grayscale PNG")
    peak = float(np.iinfo(mask.dtype).max) if np.issubdtype(mask.dtype, np.integer) else 1.0
    mask = mask.astype(np.float32) / peak
    if mask.ndim == 3 and mask.shape[2] in (2, 4):
        if mask[..., -1].min() < 1.0:
            raise InputError(f"mask {path} has transparency; {flag} reads grey levels (white = animated face, "
                             "black = photo): save it as a grayscale image without alpha")
        mask = mask[..., :-1]
    if mask.ndim == 3:
        if np.abs(mask - mask.mean(axis=2, keepdims=True)).max() > MASK_GREY_TOLERANCE / 255.0:
            raise InputError(f"mask {path} is in colour; {flag} reads grey levels (white = animated face, "
                             "black = photo): give a grayscale image")
        mask = mask.mean(axis=2)
    return as_mask(mask, photo_hw, what=f"mask {os.path.basename(path)}")
