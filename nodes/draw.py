"""Drawing for previews: numbered face boxes and keypoints (pure numpy + OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np

_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def color(i: int) -> tuple[int, int, int]:
    return _PALETTE[i % len(_PALETTE)]


def draw_faces(image: np.ndarray, records) -> np.ndarray:
    """The image [H,W,3] float with each face's box (solid), crop window (thin) and its 1-based number."""
    canvas = np.ascontiguousarray((np.clip(image, 0, 1) * 255).astype(np.uint8))
    h, w = canvas.shape[:2]
    thick = max(2, round(max(h, w) / 400))
    for i, face in enumerate(records):
        c = color(i)
        x1, y1, x2, y2 = (round(v) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), c, thick)
        cx1, cy1, cx2, cy2 = face.crop_box
        cv2.rectangle(canvas, (cx1, cy1), (cx2, cy2), c, max(1, thick // 2))
        scale = max(0.6, (y2 - y1) / 80)
        label = str(i + 1)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = max(th + 4, y1 - 6)
        cv2.rectangle(canvas, (x1, ty - th - 4), (x1 + tw + 6, ty + 4), c, -1)
        cv2.putText(canvas, label, (x1 + 3, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def draw_keypoints(images: np.ndarray, values: np.ndarray, radius: int = 0) -> np.ndarray:
    """Images [B,H,W,3] with keypoints [B,K,2] (FOMM's -1..1 coordinates, x then y) as coloured dots."""
    out = []
    for img, kp in zip(images, values, strict=True):
        canvas = np.ascontiguousarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
        h, w = canvas.shape[:2]
        r = radius or max(2, round(min(h, w) / 96))
        for k, (x, y) in enumerate(kp):
            px, py = round((x + 1) / 2 * (w - 1)), round((y + 1) / 2 * (h - 1))
            cv2.circle(canvas, (px, py), r, color(k), -1, cv2.LINE_AA)
        out.append(canvas.astype(np.float32) / 255.0)
    return np.stack(out)
