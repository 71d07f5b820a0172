"""Scenes for motion tests with the tracking model (fom_pipeline.testing.tracking_model).

A group photo of grey test faces, each carrying a red, a green and a blue mark; driving clips whose
red mark moves on a known path; and the measurement: the red mark's centroid inside each face's paste
circle, frame by frame, compared with where the driver says it must be. Crop geometry is worked out
here from the box alone (a square of twice the box's longer side, centred on it, as the CLI's and the
nodes' default ``square`` crop), not taken from the engine, so the engine's mapping is under test too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fom_pipeline.testing import FACE_MARKS, draw_marked_face, find_mark, marked_face

CROP = 256  # the tracking model's crop size
RATIO = 0.4  # the paste circle's radius over the crop window's height (the seed's default)
INSIDE = 0.85  # measure inside this share of the circle: the default feather blends its outer 10%


@dataclass
class SceneFace:
    """One face of a generated photo: its box (typed by hand in the tests) and its marks in crop pixels."""

    box: tuple[int, int, int, int]
    marks: dict = field(default_factory=lambda: dict(FACE_MARKS))

    @property
    def window(self) -> tuple[int, int, int, int]:
        """The square crop window: twice the box's longer side, centred on the box."""
        x1, y1, x2, y2 = self.box
        side = 2 * max(x2 - x1, y2 - y1)
        left, top = round((x1 + x2) / 2 - side / 2), round((y1 + y2) / 2 - side / 2)
        return left, top, left + side, top + side

    @property
    def scale(self) -> float:
        """Photo pixels per crop pixel."""
        return (self.window[2] - self.window[0]) / CROP

    def to_photo(self, points) -> np.ndarray:
        """Crop pixel centres [..., 2] -> photo pixel centres (the resize maps centres to centres)."""
        x1, y1 = self.window[:2]
        return np.asarray(points, np.float64) * self.scale + (self.scale - 1) / 2 + np.array([x1, y1])

    def circle(self, ratio: float = RATIO) -> tuple[float, float, float]:
        """The paste circle (centre x, centre y, radius): window centre, ceil(ratio x window height)."""
        x1, y1, x2, y2 = self.window
        return int((x1 + x2) / 2), int((y1 + y2) / 2), float(math.ceil((y2 - y1) * ratio))


def boxes_text(faces: list[SceneFace]) -> str:
    """The faces' boxes as the CLI's --faces and FOMFacesFromBoxes take them."""
    return ";".join(",".join(str(v) for v in f.box) for f in faces)


def group_photo(width: int, height: int, faces: list[SceneFace]) -> np.ndarray:
    """float RGB [H, W, 3]: a mid-grey photo with every face drawn in its crop window."""
    photo = np.full((height, width, 3), 0.5, np.float32)
    for face in faces:
        x1, y1, x2, y2 = face.window
        assert 0 <= x1 and 0 <= y1 and x2 <= width and y2 <= height, f"{face.window} leaves the photo"
        draw_marked_face(photo, face.window, face.marks)
    return photo


def sway(frames: int, axis: int, amplitude: float = 20.0, period: float = 12.0, start=None) -> np.ndarray:
    """[T, 2] red-mark centres in driver crop pixels: a sine along ``axis`` (0 = x, 1 = y) around ``start``."""
    path = np.tile(np.asarray(start if start is not None else FACE_MARKS["red"], np.float64), (frames, 1))
    path[:, axis] += amplitude * np.sin(2 * np.pi * np.arange(frames) / period)
    return path


def drift(frames: int, step: float = 4.0, amplitude: float = 10.0, period: float = 12.0) -> np.ndarray:
    """[T, 2]: x moves ``step`` px every frame and y sways, so no two frames share a pose (for "best")."""
    start = np.asarray(FACE_MARKS["red"]) - [step * (frames - 1) / 2, 0]
    t = np.arange(frames)
    return start + np.stack([step * t, amplitude * np.sin(2 * np.pi * t / period)], axis=1)


def driver_frames(path: np.ndarray):
    """256 px driving frames, one test face each, its red mark at ``path[t]`` (green, blue still)."""
    for red in path:
        yield marked_face(CROP, {**FACE_MARKS, "red": tuple(red)})


def red_tracks(frames: np.ndarray, faces: list[SceneFace], ratio: float = RATIO) -> np.ndarray:
    """[T, F, 2] red centroid inside each face's paste circle per frame (NaN where none is seen)."""
    h, w = frames.shape[1:3]
    ys, xs = np.mgrid[0:h, 0:w]
    regions = []
    for face in faces:
        cx, cy, r = face.circle(ratio)
        regions.append((xs - cx) ** 2 + (ys - cy) ** 2 <= (INSIDE * r) ** 2)
    out = np.full((len(frames), len(faces), 2), np.nan)
    for t, frame in enumerate(frames):
        for i, region in enumerate(regions):
            found = find_mark(frame, "red", region)
            if found is not None:
                out[t, i] = found
    return out


def hull_ratio(source_marks: dict, driver_marks: dict) -> float:
    """adapt_scale's factor: sqrt of the mark triangles' area ratio (source over driver)."""

    def area(marks: dict) -> float:
        (ax, ay), (bx, by), (cx, cy) = (marks[c] for c in ("red", "green", "blue"))
        return abs((bx - ax) * (cy - ay) - (cx - ax) * (by - ay)) / 2

    return math.sqrt(area(source_marks) / area(driver_marks))


def expected_relative(face: SceneFace, path: np.ndarray, reference: int = 0, factor: float = 1.0) -> np.ndarray:
    """[T, 2] photo positions of the face's red mark when it follows ``path`` relative to ``reference``."""
    return face.to_photo(np.asarray(face.marks["red"]) + factor * (path - path[reference]))


def tracking_error(measured: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per-frame distance in pixels (inf where the mark was not found: a lost frame fails)."""
    err = np.linalg.norm(measured - expected, axis=-1)
    return np.where(np.isnan(err), np.inf, err)


def best_lag(measured: np.ndarray, expected: np.ndarray, max_lag: int = 3) -> int:
    """The frame shift of ``measured`` against ``expected`` that fits best (0 = in step)."""
    scores = {}
    for lag in range(-max_lag, max_lag + 1):
        a = measured[max(0, lag) : len(measured) + min(0, lag)]
        b = expected[max(0, -lag) : len(expected) + min(0, -lag)]
        scores[lag] = float(np.nanmean(np.linalg.norm(a - b, axis=-1)))
    return min(scores, key=scores.get)
