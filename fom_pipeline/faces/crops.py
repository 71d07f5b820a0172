"""Face records and crop windows: where each face is cut out, and how to put it back.

Two crop modes:

- ``square`` (default): a square window centred on the face box, side ``crop_scale * max(w, h)``,
  allowed to run past the image border (the missing part is padded by repeating the edge pixels),
  so faces are never stretched. ``crop_scale=2.0`` holds the whole head with some shoulders, close
  to how VoxCeleb crops frame a face for FOMM.
- ``paddlegan``: PaddleGAN's demo's own window (PaddleGAN ``ppgan/apps/first_order_predictor.py``,
  ``extract_bbox``), reproduced number for number: the detector box is truncated to ints after
  clipping at 0 (as ``get_detections_for_image`` does); ``bh = y2 - y1``, ``bw = x2 - x1``;
  ``cy = y1 + int(bh / 2)``, ``cx = x1 + int(bw / 2)``; ``m = max(bh, bw)``; window
  ``x: cx -+ int(0.8 * m)``, ``y: cy -+ m``, each side clipped to the image. The window is then
  resized to a square, so the face is stretched exactly as in PaddleGAN's demo.

A record's ``crop_box`` plus ``size`` is the whole transform between crop and image: crop pixel
``(u, v)`` sits at image ``(x1 + u * (x2 - x1) / size, y1 + v * (y2 - y1) / size)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputError
from ..images import as_rgb_float
from ..resize import resize_batch, resize_picture

CROP_MODES = ("square", "paddlegan")
DEFAULT_CROP_SCALE = 2.0
MAX_CROP_SCALE = 4.0  # the window's side as a multiple of the face box's: 4 already holds the shoulders
DEFAULT_DRIVING_SCALE = 1.8

Box = tuple[float, float, float, float]


@dataclass
class FaceRecord:
    """One face: detector (or hand) box, score, crop window, crop size and the image it came from."""

    box: tuple[float, float, float, float]
    score: float
    crop_box: tuple[int, int, int, int]
    size: int
    image_size: tuple[int, int]
    mode: str = "square"

    @property
    def crop_hw(self) -> tuple[int, int]:
        x1, y1, x2, y2 = self.crop_box
        return y2 - y1, x2 - x1

    def crop_to_image(self, points) -> np.ndarray:
        """Map crop pixel coordinates [..., 2] (x, y in 0..size) to image pixel coordinates."""
        x1, y1, x2, y2 = self.crop_box
        pts = np.asarray(points, dtype=np.float64)
        scale = np.array([(x2 - x1) / self.size, (y2 - y1) / self.size])
        return pts * scale + np.array([x1, y1])

    def image_to_crop(self, points) -> np.ndarray:
        """Inverse of :meth:`crop_to_image`."""
        x1, y1, x2, y2 = self.crop_box
        pts = np.asarray(points, dtype=np.float64)
        scale = np.array([self.size / (x2 - x1), self.size / (y2 - y1)])
        return (pts - np.array([x1, y1])) * scale

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FaceRecord:
        return cls(
            box=tuple(float(v) for v in data["box"]),
            score=float(data["score"]),
            crop_box=tuple(int(v) for v in data["crop_box"]),
            size=int(data["size"]),
            image_size=tuple(int(v) for v in data["image_size"]),
            mode=str(data.get("mode", "square")),
        )


def check_box(box, image_hw: tuple[int, int], index: int = 0) -> Box:
    """Validate one (x1, y1, x2, y2) box against the image; returns it as floats."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"face box {index + 1} is {box!r}; expected four numbers x1,y1,x2,y2") from None
    if not all(np.isfinite([x1, y1, x2, y2])):
        raise InputError(f"face box {index + 1} {box!r} has a non-finite number")
    if x2 <= x1 or y2 <= y1:
        raise InputError(
            f"face box {index + 1} ({x1:g},{y1:g},{x2:g},{y2:g}) is empty: need x2 > x1 and y2 > y1"
        )
    h, w = image_hw
    if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
        raise InputError(
            f"face box {index + 1} ({x1:g},{y1:g},{x2:g},{y2:g}) lies outside the {w}x{h} image; "
            "boxes are x1,y1,x2,y2 in image pixels"
        )
    return fit_to_picture((x1, y1, x2, y2), (h, w))


def fit_to_picture(box: Box, image_hw: tuple[int, int]) -> Box:
    """``box`` with each side longer than the picture's cut to the picture (a face is never larger
    than the photo it is in). A box that fits keeps its exact numbers, also when it runs past the
    border; so a crop window, ``crop_scale`` times the box, stays within ``crop_scale`` times the
    picture, and the memory a crop takes stops growing with whatever size a box claims."""
    x1, y1, x2, y2 = box
    h, w = image_hw
    if x2 - x1 > w:
        x1, x2 = max(x1, 0), min(x2, w)
    if y2 - y1 > h:
        y1, y2 = max(y1, 0), min(y2, h)
    return x1, y1, x2, y2


def cap_window(window: Box, image_hw: tuple[int, int], limit: float = MAX_CROP_SCALE) -> Box:
    """``window`` with each side at most ``limit`` times the picture's longer side, cut around its
    centre. Unlike :func:`fit_to_picture` (for face boxes) a square window stays square, so a driving
    window that is meant to run past the frames (edge-padded) is never stretched when it is resized;
    and the memory a crop takes stops growing with whatever size a window claims."""
    x1, y1, x2, y2 = window
    most = limit * max(image_hw)
    if x2 - x1 > most:
        middle = (x1 + x2) / 2
        x1, x2 = int(round(middle - most / 2)), int(round(middle + most / 2))
    if y2 - y1 > most:
        middle = (y1 + y2) / 2
        y1, y2 = int(round(middle - most / 2)), int(round(middle + most / 2))
    return x1, y1, x2, y2


def square_window(box: Box, crop_scale: float = DEFAULT_CROP_SCALE) -> tuple[int, int, int, int]:
    """Square window centred on ``box`` with side ``crop_scale * max(w, h)`` (may exceed the image)."""
    if not 0 < crop_scale <= MAX_CROP_SCALE:
        raise InputError(f"crop_scale {crop_scale} is out of range; use above 0 to {MAX_CROP_SCALE:g} "
                         "(2.0 holds the whole head)")
    x1, y1, x2, y2 = box
    side = max(2, int(round(crop_scale * max(x2 - x1, y2 - y1))))
    left = int(round((x1 + x2) / 2 - side / 2))
    top = int(round((y1 + y2) / 2 - side / 2))
    return left, top, left + side, top + side


def paddlegan_window(box: Box, image_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """PaddleGAN's demo's crop window for one detector box (see the module docstring for the exact rules)."""
    h, w = image_hw
    bx1, by1, bx2, by2 = (int(v) for v in np.clip(np.asarray(box, dtype=np.float64), 0, None))
    bh = by2 - by1
    bw = bx2 - bx1
    cy = by1 + int(bh / 2)
    cx = bx1 + int(bw / 2)
    margin = max(bh, bw)
    y1 = max(0, cy - margin)
    x1 = max(0, cx - int(0.8 * margin))
    y2 = min(h, cy + margin)
    x2 = min(w, cx + int(0.8 * margin))
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"face box {box} gives an empty paddlegan window; give a larger box")
    return x1, y1, x2, y2


def make_faces(
    image_hw: tuple[int, int],
    boxes: Sequence,
    scores: Sequence[float] | None = None,
    crop_mode: str = "square",
    crop_scale: float = DEFAULT_CROP_SCALE,
    size: int = 256,
) -> list[FaceRecord]:
    """Turn boxes (detected or typed by hand) into face records with crop windows."""
    if crop_mode not in CROP_MODES:
        raise InputError(f"crop_mode {crop_mode!r} is unknown; choose one of {', '.join(CROP_MODES)}")
    if int(size) < 16:
        raise InputError(f"crop size {size} is too small; use the model's size (256 or 512)")
    h, w = int(image_hw[0]), int(image_hw[1])
    boxes = list(boxes)
    if not boxes:
        raise InputError("no face boxes given; detect faces or type boxes as x1,y1,x2,y2;...")
    if scores is None:
        scores = [1.0] * len(boxes)
    if len(scores) != len(boxes):
        raise InputError(f"{len(scores)} scores for {len(boxes)} boxes; give one score per box")
    faces = []
    for i, (box, score) in enumerate(zip(boxes, scores, strict=True)):
        checked = check_box(box, (h, w), i)
        if crop_mode == "square":
            window = square_window(checked, crop_scale)
        else:
            window = paddlegan_window(checked, (h, w))
        faces.append(FaceRecord(checked, float(score), window, int(size), (h, w), crop_mode))
    return faces


def cut_window(image: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """Pixels of ``window`` from ``image`` [..., H, W, C], edge-padded where it leaves the image."""
    x1, y1, x2, y2 = window
    h, w = image.shape[-3], image.shape[-2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if cx2 <= cx1 or cy2 <= cy1:
        raise InputError(f"crop window {window} lies outside the {w}x{h} image")
    inside = image[..., cy1:cy2, cx1:cx2, :]
    pads = (cy1 - y1, y2 - cy2, cx1 - x1, x2 - cx2)
    if not any(pads):
        return inside
    widths = [(0, 0)] * (image.ndim - 3) + [(pads[0], pads[1]), (pads[2], pads[3]), (0, 0)]
    return np.pad(inside, widths, mode="edge")


def crop_window(image: np.ndarray, window: tuple[int, int, int, int], size: int, mode: str = "square") -> np.ndarray:
    """One window of ``image`` [H,W,3] (edge-padded past the border) resized to ``size`` x ``size``."""
    return resize_picture(cut_window(image, window), int(size), int(size), mode)


def crop_faces(image, faces: Sequence[FaceRecord]) -> np.ndarray:
    """Cut every face's window out of ``image`` [H,W,3] and resize it: float32 [N,S,S,3]."""
    image = as_rgb_float(image)
    if not faces:
        raise InputError("no faces to crop; detect faces or give boxes first")
    out = []
    for i, face in enumerate(faces):
        if tuple(face.image_size) != image.shape[:2]:
            raise InputError(
                f"face {i + 1} was found on a {face.image_size[1]}x{face.image_size[0]} image but this "
                f"image is {image.shape[1]}x{image.shape[0]}; detect faces on this image"
            )
        out.append(crop_window(image, face.crop_box, face.size, face.mode))
    return np.stack(out).astype(np.float32)


def driving_window(
    boxes_per_frame: Sequence,
    frame_hw: tuple[int, int],
    scale: float = DEFAULT_DRIVING_SCALE,
) -> tuple[int, int, int, int]:
    """One fixed square window for a whole driving clip.

    The union of the face boxes over all frames (frames without a box - detection misses - are
    simply bridged by the others), enlarged so its longer side is ``scale`` times the union's, made
    square around the union's centre and shifted (not shrunk) to stay inside the frame when it fits.
    Head movement therefore stays inside the crop, as in FOMM's crop-video tool.
    ``boxes_per_frame``: per frame, a box (x1,y1,x2,y2[,score]), a list of boxes (the first, i.e.
    the best, is used) or None.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    chosen = []
    for entry in boxes_per_frame:
        if entry is None or len(entry) == 0:
            continue
        first = entry[0]
        box = first if isinstance(first, (list, tuple, np.ndarray)) else entry
        chosen.append([float(v) for v in box[:4]])
    if not chosen:
        raise InputError("no face found in any driving frame; give a box by hand or use the video as is")
    arr = np.asarray(chosen)
    ux1, uy1 = arr[:, 0].min(), arr[:, 1].min()
    ux2, uy2 = arr[:, 2].max(), arr[:, 3].max()
    if not scale > 0:
        raise InputError(f"driving window scale {scale} must be above 0")
    side = int(round(scale * max(ux2 - ux1, uy2 - uy1)))
    side = max(2, side)
    cx, cy = (ux1 + ux2) / 2, (uy1 + uy2) / 2
    x1 = int(round(cx - side / 2))
    y1 = int(round(cy - side / 2))
    if side <= w:
        x1 = min(max(x1, 0), w - side)
    if side <= h:
        y1 = min(max(y1, 0), h - side)
    return x1, y1, x1 + side, y1 + side


def crop_driving_frames(frames, window: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Cut the same ``window`` out of every frame [T,H,W,3] and resize: float32 [T,S,S,3]."""
    frames = as_rgb_float(frames, "driving frames", batched=True)
    cut = cut_window(frames, tuple(int(v) for v in window))
    return resize_batch(cut, int(size)).astype(np.float32)
