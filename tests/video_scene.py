"""Source videos for the video-source tests: a slow pan over a photo of marked test faces (the
tracking model's marks, tests/motion_scene.py), where faces can leave the frame and the clip can
cut to another shot; and where each face's red mark must be in each output frame.

The pan is known exactly: frame t shows the photo shifted left by ``offsets[t]`` pixels (bilinear,
so sub-pixel steps are real motion), so a face's mark in source frame t sits at its photo position
minus the offset, and with the driver's sway added (times the face's crop scale) in the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from motion_scene import RATIO, SceneFace, group_photo

from fom_pipeline.testing import find_mark

# three faces on a 1000 x 320 photo; the frame (640 x 320) pans over it
PAN_FACES = [SceneFace((80, 100, 180, 200)), SceneFace((300, 90, 420, 210)), SceneFace((500, 120, 580, 200))]
PHOTO_SIZE = (1000, 320)
FRAME_SIZE = (640, 320)


@dataclass
class PanClip:
    """A pan over ``photo``: frame t is the photo shifted left by ``offsets[t]``; frames listed in
    ``cut`` show ``other`` (another shot) instead."""

    photo: np.ndarray
    faces: list[SceneFace]
    offsets: np.ndarray
    size: tuple[int, int] = FRAME_SIZE
    cut: tuple[int, ...] = ()
    other: np.ndarray | None = None

    def frame(self, t: int) -> np.ndarray:
        if t in self.cut:
            return self.other
        shift = np.float32([[1, 0, -self.offsets[t]], [0, 1, 0]])
        return cv2.warpAffine(self.photo, shift, self.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def frames(self):
        for t in range(len(self.offsets)):
            yield self.frame(t)

    def array(self) -> np.ndarray:
        """uint8 [T, H, W, 3]."""
        return (np.clip(np.stack(list(self.frames())), 0, 1) * 255 + 0.5).astype(np.uint8)

    def visible(self, t: int, face: int) -> bool:
        """Whether the face's whole box is in frame t (and frame t is of this shot)."""
        x1, _, x2, _ = self.faces[face].box
        return t not in self.cut and x1 - self.offsets[t] >= 0 and x2 - self.offsets[t] <= self.size[0]

    def source_mark(self, t: int, face: int) -> np.ndarray:
        """Where the face's red mark is in source frame t."""
        return self.faces[face].to_photo(self.faces[face].marks["red"]) - [self.offsets[t], 0.0]

    def expected(self, t: int, face: int, path: np.ndarray, reference: int = 0) -> np.ndarray:
        """Where the red mark must be in output frame t: its source place plus the driver's sway."""
        return self.source_mark(t, face) + (path[t] - path[reference]) * self.faces[face].scale


def pan_clip(frames: int, speed: float = 1.5, faces=None, start: float = 0.0) -> PanClip:
    faces = faces or PAN_FACES
    return PanClip(group_photo(*PHOTO_SIZE, faces), faces, start + speed * np.arange(frames, dtype=np.float64))


def away_and_back(frames: int, step: float, turn: int) -> np.ndarray:
    """Offsets panning right by ``step`` a frame until ``turn``, then back."""
    t = np.arange(frames)
    return step * np.minimum(t, turn) - step * np.maximum(0, t - turn)


def other_shot() -> np.ndarray:
    """Another shot: soft coloured blotches, no face."""
    rng = np.random.default_rng(7)
    noise = rng.random((FRAME_SIZE[1], FRAME_SIZE[0], 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 8) * 2.0 - 0.5, 0.0, 1.0) * 0.6 + 0.2


def mark_near(frame: np.ndarray, where, radius: float = 40.0):
    """The red mark's centroid within ``radius`` px of ``where`` (None when there is none)."""
    x, y = where
    h, w = frame.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    return find_mark(frame, "red", (xs - x) ** 2 + (ys - y) ** 2 <= radius**2)


def circles_mask(clip: PanClip, t: int, faces=None, ratio: float = RATIO, margin: float = 4.0) -> np.ndarray:
    """bool [H, W]: inside any face's paste circle in frame t (circles around the faces' windows),
    ``margin`` px wider for the tracker's window rounding."""
    w, h = clip.size
    ys, xs = np.mgrid[0:h, 0:w]
    inside = np.zeros((h, w), bool)
    for i in faces if faces is not None else range(len(clip.faces)):
        cx, cy, r = clip.faces[i].circle(ratio)
        inside |= (xs - (cx - clip.offsets[t])) ** 2 + (ys - cy) ** 2 <= (r + margin) ** 2
    return inside

