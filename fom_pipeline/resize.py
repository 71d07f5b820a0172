"""Resizing pictures to the model's size (and face crops back to their window): one rule for the
model's input, the driving frames and the crops.

Area averaging when shrinking (in either direction), bilinear when enlarging; PaddleGAN's own crop
("paddlegan" mode) always uses bilinear, as PaddleGAN's demo's plain ``cv2.resize`` calls do.
"""

from __future__ import annotations

import cv2
import numpy as np


def resize_picture(picture: np.ndarray, width: int, height: int, mode: str = "square") -> np.ndarray:
    """One picture [H,W,C] resized to ``width`` x ``height`` (a copy, also when already that size)."""
    if picture.shape[1] == width and picture.shape[0] == height:
        return picture.copy()
    shrinking = width < picture.shape[1] or height < picture.shape[0]
    interp = cv2.INTER_AREA if shrinking and mode != "paddlegan" else cv2.INTER_LINEAR
    return cv2.resize(picture, (width, height), interpolation=interp)


def resize_batch(pictures: np.ndarray, size: int, mode: str = "square") -> np.ndarray:
    """Pictures [B,H,W,C] resized to ``size`` x ``size``; passed on as they are when already that size."""
    if pictures.shape[1:3] == (size, size):
        return pictures
    return np.stack([resize_picture(p, size, size, mode) for p in pictures])
