"""Paste animated face crops back into the original picture, frame by frame.

PaddleGAN's demo's blend (PaddleGAN ``first_order_predictor.py``): the animated crop is resized back to its
window, and a filled circle centred on the window, radius ``ratio * window height``, decides which
pixels are replaced (hard edge). Here:

- ``feather`` (pixels) softens the edge: alpha is 1 up to ``radius - feather`` and falls smoothly
  to 0 at ``radius``, so the circle never grows. ``feather=0`` is PaddleGAN's demo's hard edge; the
  default (``None``) is 10% of the radius, wide enough to hide the seam yet keep the face.
- The circle is clipped to the crop window (PaddleGAN's demo copied black pixels where a large ratio ran
  past the window).
- ``color_match`` ("lab", "rgb", True = "lab") shifts each pasted face's per-channel mean and std
  inside the circle to those of the original region, per frame.
- Faces are composited in list order, later faces on top (``order="smallest_on_top"`` pastes
  larger faces first).
- ``shape="rect"`` pastes the whole window instead (PaddleGAN's demo did this for a lone face).
- ``mask`` (a picture-sized map in [0, 1], e.g. from a segmentation node or painted by hand) replaces
  the circle for every face it covers: the mask is "on" (>= 0.5) somewhere in the central half of
  the face's detection box (see :func:`mask_covers`). Such a face is pasted where the mask is, within
  its crop window, with the mask's own grey levels kept and its edge (where it drops below 0.5, and
  the window's edge) feathered inward exactly as the circle's: ``feather`` pixels, default 10% of
  the circle's radius, so the pasted area never grows past the mask. ``feather=0`` uses the mask
  as it is. Faces the mask does not cover keep their circle.

Only each face's bounding region is touched; everything is vectorised over the frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..arrays import as_numpy
from ..errors import InputError
from ..images import as_rgb_float
from ..options import DEFAULT_RATIO, PasteOptions
from ..resize import resize_picture
from .crops import FaceRecord

FEATHER_FRACTION = 0.1


def circle_radius(face: FaceRecord, ratio: float) -> float:
    """Radius in image pixels: ``ratio`` x crop window height (PaddleGAN's demo rounds it up with ceil)."""
    return float(np.ceil(face.crop_hw[0] * ratio))


def _alpha(face: FaceRecord, region, ratio: float, feather: float | None, shape: str) -> np.ndarray:
    """Blend weights [h,w] for the visible part ``region`` = (x1,y1,x2,y2) of the face's window."""
    x1, y1, x2, y2 = region
    if shape == "rect":
        return np.ones((y2 - y1, x2 - x1), np.float32)
    wx1, wy1, wx2, wy2 = face.crop_box
    cx, cy = int((wx1 + wx2) / 2), int((wy1 + wy2) / 2)
    radius = circle_radius(face, ratio)
    width = feather_width(face, ratio, feather)
    ys = np.arange(y1, y2, dtype=np.float32)[:, None] - cy
    xs = np.arange(x1, x2, dtype=np.float32)[None, :] - cx
    dist = np.sqrt(xs * xs + ys * ys)
    if width <= 0:
        return (dist <= radius).astype(np.float32)
    return _smoothstep((radius - dist) / width)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def feather_width(face: FaceRecord, ratio: float, feather: float | None) -> float:
    """Soft edge in pixels: ``feather``, or 10% of the face's circle radius when None."""
    return FEATHER_FRACTION * circle_radius(face, ratio) if feather is None else float(feather)


def as_mask(mask, hw: tuple[int, int], what: str = "mask") -> np.ndarray:
    """A paste mask as float32 [H,W] in [0, 1], checked against the frames' size ``hw``.

    Accepts [H,W], [1,H,W] (ComfyUI's MASK; the first of a batch is used) or [H,W,1], float or uint8.
    """
    array = as_numpy(mask)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    elif array.ndim == 3:
        array = array[0]
    if array.ndim != 2:
        raise InputError(f"{what} has shape {tuple(np.shape(mask))}; expected one grey map [H,W]")
    if tuple(array.shape) != tuple(hw):
        raise InputError(f"{what} is {array.shape[1]}x{array.shape[0]} but the picture is {hw[1]}x{hw[0]}; "
                         "give a mask the size of the picture the faces are pasted into")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return np.clip(np.nan_to_num(array.astype(np.float32, copy=False)), 0.0, 1.0)


def mask_covers(face: FaceRecord, mask: np.ndarray) -> bool:
    """True when ``mask`` [H,W] is on (>= 0.5) somewhere in the central half of the face's box.

    The central half (a quarter of the box trimmed off each side), not the whole box or crop window,
    so a mask painted over one face does not claim a neighbour whose window it merely touches.
    """
    x1, y1, x2, y2 = face.box
    qw, qh = (x2 - x1) / 4.0, (y2 - y1) / 4.0
    h, w = mask.shape
    cx1, cy1 = max(0, int(np.floor(x1 + qw))), max(0, int(np.floor(y1 + qh)))
    cx2, cy2 = min(w, int(np.ceil(x2 - qw))), min(h, int(np.ceil(y2 - qh)))
    return cx2 > cx1 and cy2 > cy1 and bool((mask[cy1:cy2, cx1:cx2] >= 0.5).any())


def _mask_alpha(face: FaceRecord, region, mask: np.ndarray, width: float) -> np.ndarray:
    """Blend weights from ``mask`` over ``region`` (the visible window), feathered inward by ``width``.

    The window's own edges count as the mask's edge (nothing is pasted past the window), the
    picture's border does not (a face cut by the border stays whole up to it).
    """
    x1, y1, x2, y2 = region
    values = mask[y1:y2, x1:x2]
    if width <= 0:
        return values.astype(np.float32, copy=True)
    inside = np.pad((values >= 0.5).astype(np.uint8), 1, mode="edge")
    wx1, wy1, wx2, wy2 = face.crop_box
    h, w = mask.shape
    if wy1 >= 0:
        inside[0] = 0
    if wy2 <= h:
        inside[-1] = 0
    if wx1 >= 0:
        inside[:, 0] = 0
    if wx2 <= w:
        inside[:, -1] = 0
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return values * _smoothstep((dist - 0.5) / width)


def _match_colors(patch: np.ndarray, target: np.ndarray, alpha: np.ndarray, space: str) -> np.ndarray:
    """Per frame, give ``patch`` [T,h,w,3] the channel mean/std of ``target`` where alpha > 0.5."""
    inside = alpha > 0.5
    if inside.sum() < 4:
        return patch
    to_space, from_space = (cv2.COLOR_RGB2Lab, cv2.COLOR_Lab2RGB) if space == "lab" else (None, None)
    out = np.empty_like(patch)
    for t in range(patch.shape[0]):
        src, ref = patch[t], target[t]
        if to_space is not None:
            src, ref = cv2.cvtColor(src, to_space), cv2.cvtColor(ref, to_space)
        s, r = src[inside], ref[inside]
        matched = (src - s.mean(0)) / (s.std(0) + 1e-6) * r.std(0) + r.mean(0)
        if from_space is not None:
            matched = cv2.cvtColor(matched.astype(np.float32), from_space)
        out[t] = np.clip(matched, 0.0, 1.0)
    return out


def paste_faces(
    frames,
    faces: Sequence[FaceRecord],
    animated,
    ratio: float = DEFAULT_RATIO,
    feather: float | None = None,
    color_match: bool | str = False,
    order: str = "given",
    shape: str = "circle",
    mask=None,
) -> np.ndarray:
    """Paste ``animated`` [N,T,S,S,3] (face-major) into ``frames``; returns float32 [T,H,W,3].

    ``frames`` is the original image [H,W,3] (used for every frame) or frames [T,H,W,3] (to chain
    pastes of face groups driven by different videos). Call it per chunk of frames for long clips.
    ``mask`` [H,W] replaces the circle of the faces it covers (see the module docstring). The options
    are checked as :class:`~fom_pipeline.options.PasteOptions`.
    """
    space = PasteOptions(ratio, feather, color_match, shape, order).color_space
    faces = list(faces)
    if not faces:
        raise InputError("no faces to paste; detect faces or give boxes first")
    anim = as_numpy(animated)
    if anim.ndim == 4 and len(faces) == 1:
        anim = anim[None]
    if anim.ndim != 5 or anim.shape[-1] != 3 or anim.shape[0] != len(faces):
        raise InputError(
            f"animated faces have shape {tuple(anim.shape)}; expected [N,T,S,S,3] with N = {len(faces)} faces"
        )
    anim = anim.astype(np.float32, copy=False)
    n_frames = anim.shape[1]
    base_is_video = np.ndim(frames) == 4 or (hasattr(frames, "dim") and frames.dim() == 4)
    base = as_rgb_float(frames, "frames" if base_is_video else "image", batched=base_is_video)
    if base_is_video:
        if base.shape[0] != n_frames:
            raise InputError(
                f"{base.shape[0]} frames but {n_frames} animated frames per face; give equal counts"
            )
        out = base.copy()
    else:
        out = np.repeat(base[None], n_frames, axis=0)
    h, w = out.shape[1:3]
    if mask is not None:
        mask = as_mask(mask, (h, w))
    indices = list(range(len(faces)))
    if order == "smallest_on_top":
        indices.sort(key=lambda i: -(faces[i].crop_hw[0] * faces[i].crop_hw[1]))
    for i in indices:
        face = faces[i]
        if tuple(face.image_size) != (h, w):
            raise InputError(
                f"face {i + 1} belongs to a {face.image_size[1]}x{face.image_size[0]} image but the frames are "
                f"{w}x{h}; detect faces on these frames"
            )
        face_mask = mask if mask is not None and mask_covers(face, mask) else None
        _paste_one(out, face, anim[i], ratio, feather, space, shape, face_mask)
    return out


def _paste_one(out, face, anim_face, ratio, feather, space, shape, mask=None) -> None:
    h, w = out.shape[1:3]
    x1, y1, x2, y2 = face.crop_box
    rx1, ry1, rx2, ry2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if mask is None and shape == "circle":  # shrink the region to the circle's bounding square
        cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
        r = int(circle_radius(face, ratio)) + 1
        rx1, ry1, rx2, ry2 = max(rx1, cx - r), max(ry1, cy - r), min(rx2, cx + r + 1), min(ry2, cy + r + 1)
    if rx2 <= rx1 or ry2 <= ry1:
        return
    region = (rx1, ry1, rx2, ry2)
    if mask is not None:
        alpha = _mask_alpha(face, region, mask, feather_width(face, ratio, feather))
    else:
        alpha = _alpha(face, region, ratio, feather, shape)
    if not alpha.any():
        return
    win_h, win_w = y2 - y1, x2 - x1
    sub = (slice(ry1 - y1, ry2 - y1), slice(rx1 - x1, rx2 - x1))
    patch = np.stack([resize_picture(frame, win_w, win_h, face.mode)[sub] for frame in anim_face])
    target = out[:, ry1:ry2, rx1:rx2]
    if space is not None:
        patch = _match_colors(patch, target, alpha, space)
    a = alpha[None, :, :, None]
    out[:, ry1:ry2, rx1:rx2] = target + a * (patch - target)


def paste_tracked(frames, tracks, first: int, animated, mask=None, **options) -> np.ndarray:
    """Paste faces tracked through a video (:class:`~fom_pipeline.faces.track.FaceTracks`) onto their
    own frames: ``frames`` [b,H,W,3] (uint8 or float) are frames ``first`` .. ``first + b`` of that
    video, ``animated`` [N,b,S,S,3] its faces; returns uint8 [b,H,W,3]. Each face goes into its window
    of that frame; a face not seen in a frame is not pasted there (the frame is left as it is).
    ``mask``: one map [H,W] for every frame or one per frame [T,H,W] of the video; ``options``: as for
    :func:`paste_faces`. Frames are converted one at a time (a batch of 1080p frames as float would
    be hundreds of MB)."""
    anim = as_numpy(animated)
    if anim.ndim != 5 or anim.shape[0] != tracks.faces or anim.shape[1] != len(frames):
        raise InputError(f"animated faces have shape {tuple(anim.shape)}; expected [N,b,S,S,3] with N = "
                         f"{tracks.faces} faces and b = {len(frames)} frames")
    out = np.empty((len(frames), *np.shape(frames)[1:3], 3), np.uint8)
    for k in range(len(frames)):
        t = first + k
        seen = [i for i in range(tracks.faces) if tracks.present[t, i]]
        frame = np.asarray(frames[k])
        frame = as_rgb_float(frame.astype(np.float32) / np.float32(255.0) if frame.dtype == np.uint8 else frame)
        if seen:
            frame_mask = None if mask is None else (mask[t] if np.ndim(mask) == 3 else mask)
            frame = paste_faces(frame[None], [tracks.record(t, i) for i in seen], anim[seen, k : k + 1],
                                mask=frame_mask, **options)[0]
        out[k] = np.clip(frame * 255.0 + 0.5, 0, 255)
    return out
