"""Faces followed through a source video: found in its first frame, tracked frame to frame, each
keeping its number, with steady crop windows.

How (:func:`track_faces`, one pass over the video, a chunk at a time; what is kept is a box per
face and frame):

- Frame 0's faces are given (boxes by hand, or the detector's, found by the caller).
- Each face is followed by pyramidal Lucas-Kanade optical flow on corner points inside its box
  (on a grey copy at most ``TRACK_SIDE`` px wide): the box moves by the points' median shift and
  scales by their median change of spread. Points that do not track back to where they came from
  (forward-backward check) are dropped; too few left, the box mostly out of the frame, or a patch
  that no longer looks like the face did a frame ago: the face is *lost*.
- A hard cut (the grey histogram of the frame jumps) loses every face at once.
- A lost face is looked for again on every frame: with a detector (every ``detect_every`` frames)
  among the detections no tracked face holds, by how much each looks like the face did when last
  seen whole; without one, by matching that picture of the face over the frame. Found (a match at
  least ``REACQUIRE_MATCH``), it is tracked again under its own number; until then it is absent
  there, and the front ends leave those frames as they are (never a face pasted in the wrong place).
- With a detector, tracked faces are also re-centred on their detection every ``detect_every``
  frames, so slow drift cannot build up.
- Crop windows are steady: each face's centre and size are smoothed over ``steady`` frames with
  the same zero-phase local line fit as the keypoints (:func:`fom_pipeline.keypoints.smooth_array`),
  per stretch of frames where the face is seen (never across a loss or a cut), so the window
  follows the face without trembling or lagging behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InputError
from ..keypoints import smooth_array
from .boxes import box_iou
from .crops import DEFAULT_CROP_SCALE, FaceRecord, make_faces, paddlegan_window, square_window
from .select import SCORE_THRESHOLD

TRACK_SIDE = 640  # the grey copy tracking runs on is at most this wide or tall
MIN_POINTS = 6  # fewer tracked points than this: the face is lost
FB_ERROR_PX = 1.0  # forward-backward disagreement (tracking pixels) above which a point is dropped
VISIBLE_SHARE = 0.6  # less of the box than this inside the frame: the face has left it
SAME_FACE_MATCH = 0.5  # frame-to-frame look of a tracked face (normalised correlation) below which it is lost
REACQUIRE_MATCH = 0.8  # how closely a place must look like a lost face to take it back (no detector)
REACQUIRE_DETECTED = 0.5  # the same for a detected face (the detector already says it is a face)
CUT_DISTANCE = 0.4  # Bhattacharyya distance of consecutive grey histograms that marks a hard cut
DEFAULT_STEADY = 9  # frames the crop windows are smoothed over
TEMPLATE_SIDE = 24  # px: a face's look, compared as a grey patch this size
Progress = Callable[[int, int], None]


@dataclass
class FaceTracks:
    """Where each face is in each frame of a video, and the steady window it is cut out with.

    ``boxes`` float [T, N, 4] (NaN where the face is not seen), ``windows`` int [T, N, 4] (valid where
    ``present``), ``present`` bool [T, N]; ``image_size`` (h, w) of the frames; ``size``, ``mode``:
    the crops' side and crop mode as in :class:`~fom_pipeline.faces.crops.FaceRecord`.
    """

    boxes: np.ndarray
    windows: np.ndarray
    present: np.ndarray
    image_size: tuple[int, int]
    size: int = 256
    mode: str = "square"
    scores: list = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        return int(self.present.shape[0])

    @property
    def faces(self) -> int:
        return int(self.present.shape[1])

    def __len__(self) -> int:
        return self.faces

    def record(self, frame: int, face: int) -> FaceRecord:
        """Face ``face`` in frame ``frame`` as a FaceRecord (its window that frame)."""
        box = self.boxes[frame, face]
        score = self.scores[face] if face < len(self.scores) else 1.0
        return FaceRecord(tuple(float(v) for v in box), float(score),
                          tuple(int(v) for v in self.windows[frame, face]), int(self.size),
                          tuple(self.image_size), self.mode)

    def first_records(self) -> list[FaceRecord]:
        """Each face where it is first seen (frame 0 for every face given there)."""
        firsts = [int(np.argmax(self.present[:, i])) for i in range(self.faces)]
        return [self.record(t, i) for i, t in enumerate(firsts)]

    def select(self, faces: Sequence[int]) -> FaceTracks:
        """Some of the faces (0-based numbers), in the order given."""
        keep = list(faces)
        return FaceTracks(self.boxes[:, keep], self.windows[:, keep], self.present[:, keep], self.image_size,
                          self.size, self.mode, [self.scores[i] if i < len(self.scores) else 1.0 for i in keep])

    def resized(self, size: int) -> FaceTracks:
        """The same tracks with crops of ``size`` px."""
        return FaceTracks(self.boxes, self.windows, self.present, self.image_size, int(size), self.mode, self.scores)

    def cut(self, first: int, count: int) -> FaceTracks:
        """Frames ``first`` .. ``first + count`` only (a trim of the video)."""
        part = slice(first, first + count)
        return FaceTracks(self.boxes[part], self.windows[part], self.present[part], self.image_size, self.size,
                          self.mode, self.scores)


# ---------------------------------------------------------------------------------------------------
# looks and points


def _grey(frame: np.ndarray, scale: float) -> np.ndarray:
    """uint8 grey copy of an RGB frame (uint8 or float in [0, 1]) at ``scale``."""
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return grey


def _histogram(grey: np.ndarray) -> np.ndarray:
    hist = cv2.calcHist([grey], [0], None, [32], [0, 256])
    return cv2.normalize(hist, hist).astype(np.float32)


def _look(grey: np.ndarray, box) -> np.ndarray | None:
    """The face's grey patch (box in tracking pixels, edge-padded past the border) at TEMPLATE_SIDE."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    h, w = grey.shape
    pad = max(0, -x1, -y1, x2 - w, y2 - h)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    patch = grey[y1 + pad : y2 + pad, x1 + pad : x2 + pad]
    return cv2.resize(patch, (TEMPLATE_SIDE, TEMPLATE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)


def _picture(grey: np.ndarray, box) -> np.ndarray | None:
    """The grey pixels of a box wholly inside the frame (float32), else None."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    h, w = grey.shape
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h or x2 - x1 < 4 or y2 - y1 < 4:
        return None
    return grey[y1:y2, x1:x2].astype(np.float32)


def _match(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Normalised correlation of two looks (-1..1; 0 when either is flat or missing)."""
    if a is None or b is None:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 1e-6 else 0.0


def _points(grey: np.ndarray, box) -> np.ndarray:
    """Points to track inside ``box`` (tracking pixels): corners, topped up with a grid; [P, 1, 2]."""
    h, w = grey.shape
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return np.zeros((0, 1, 2), np.float32)
    mask = np.zeros_like(grey)
    mask[y1:y2, x1:x2] = 255
    side = max(x2 - x1, y2 - y1)
    corners = cv2.goodFeaturesToTrack(grey, 60, 0.01, max(2.0, side / 20), mask=mask)
    corners = np.zeros((0, 1, 2), np.float32) if corners is None else corners.astype(np.float32)
    gx, gy = np.meshgrid(np.linspace(x1 + 0.2 * (x2 - x1), x2 - 0.2 * (x2 - x1), 5),
                         np.linspace(y1 + 0.2 * (y2 - y1), y2 - 0.2 * (y2 - y1), 5))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)[:, None]
    return np.concatenate([corners, grid]) if len(corners) < 20 else corners


def _peak_offset(line: np.ndarray, at: int) -> float:
    """Sub-pixel offset of a correlation peak at ``at`` on ``line`` (a parabola through it and its neighbours)."""
    if not 0 < at < len(line) - 1:
        return 0.0
    left, mid, right = line[at - 1], line[at], line[at + 1]
    bend = left - 2 * mid + right
    return float(np.clip(0.5 * (left - right) / bend, -0.5, 0.5)) if bend < 0 else 0.0


def _visible_share(box, hw: tuple[int, int]) -> float:
    x1, y1, x2, y2 = box
    h, w = hw
    iw, ih = max(0.0, min(x2, w) - max(x1, 0)), max(0.0, min(y2, h) - max(y1, 0))
    area = (x2 - x1) * (y2 - y1)
    return float(iw * ih / area) if area > 0 else 0.0


def _lk(prev: np.ndarray, cur: np.ndarray, points: np.ndarray):
    params = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    moved, ok, _ = cv2.calcOpticalFlowPyrLK(prev, cur, points, None, **params)
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(cur, prev, moved, None, **params)
    error = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
    good = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (error < FB_ERROR_PX)
    return moved, good


def _follow(box, before: np.ndarray, after: np.ndarray):
    """The box moved by the points' median shift and scaled by their median change of spread."""
    before, after = before.reshape(-1, 2).astype(np.float64), after.reshape(-1, 2).astype(np.float64)
    shift = np.median(after - before, axis=0)
    scale = 1.0
    if len(before) >= 2:
        i, j = np.triu_indices(len(before), 1)
        d0 = np.linalg.norm(before[i] - before[j], axis=1)
        d1 = np.linalg.norm(after[i] - after[j], axis=1)
        far = d0 > 2.0
        if far.any():
            scale = float(np.clip(np.median(d1[far] / d0[far]), 0.8, 1.25))
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2 + shift[0], (y1 + y2) / 2 + shift[1]
    hw, hh = (x2 - x1) / 2 * scale, (y2 - y1) / 2 * scale
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def _scaled(box, factor: float):
    return tuple(float(v) * factor for v in box)


# ---------------------------------------------------------------------------------------------------
# one face


@dataclass
class _Face:
    box: tuple  # tracking pixels
    points: np.ndarray
    look: np.ndarray | None  # last frame's
    whole: np.ndarray | None  # when last seen whole, for finding it again
    picture: np.ndarray | None = None  # the same at tracking resolution (matched over a frame) ...
    picture_box: tuple | None = None  # ... and the box it was cut for
    lost: bool = False
    detector_ratio: float | None = None  # the face's side over its detection's (hand boxes differ in size)


class _Tracker:
    """The frame-to-frame state of every face (see the module docstring)."""

    def __init__(self, grey: np.ndarray, boxes: list, detector, detect_every: int, threshold: float,
                 scale: float):
        self.scale = scale
        self.detector, self.detect_every, self.threshold = detector, max(1, int(detect_every)), threshold
        self.faces = []
        for box in boxes:
            look = _look(grey, box)
            self.faces.append(_Face(tuple(box), _points(grey, box), look, look, _picture(grey, box), tuple(box)))
        self.prev = grey
        self.hist = _histogram(grey)

    def boxes(self) -> list:
        return [None if f.lost else _scaled(f.box, 1.0 / self.scale) for f in self.faces]

    def step(self, grey: np.ndarray, frame: np.ndarray, index: int) -> None:
        hist = _histogram(grey)
        cut = cv2.compareHist(self.hist, hist, cv2.HISTCMP_BHATTACHARYYA) > CUT_DISTANCE
        self.hist = hist
        for face in self.faces:
            if cut:
                face.lost = True
            if not face.lost:
                self._track(face, grey)
        detections = self._detect(frame, index, cut)
        if detections is not None:
            self._recentre(detections)
        for face in self.faces:
            if face.lost:
                self._find_again(face, grey, detections)
        self.prev = grey

    def _track(self, face: _Face, grey: np.ndarray) -> None:
        if len(face.points) < MIN_POINTS:
            face.points = _points(self.prev, face.box)
        if len(face.points) < MIN_POINTS:
            face.lost = True
            return
        moved, good = _lk(self.prev, grey, face.points)
        if good.sum() < MIN_POINTS:
            face.lost = True
            return
        box = _follow(face.box, face.points[good], moved[good])
        look = _look(grey, box)
        share = _visible_share(box, grey.shape)
        if share < VISIBLE_SHARE or _match(face.look, look) < SAME_FACE_MATCH:
            face.lost = True
            return
        face.box, face.look = box, look
        if share >= 1.0:
            face.whole, face.picture, face.picture_box = look, _picture(grey, box), box
        face.points = moved[good] if good.sum() >= max(MIN_POINTS, len(face.points) // 2) else _points(grey, box)

    def _detect(self, frame: np.ndarray, index: int, cut: bool) -> list | None:
        """Detections (tracking pixels) on this frame when the detector is due, else None."""
        if self.detector is None or not (cut or index % self.detect_every == 0):
            return None
        from .detect import detect_faces

        image = frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame
        found = detect_faces(self.detector, image, threshold=self.threshold, allow_empty=True)
        return [_scaled(box, self.scale) for box, _ in found]

    def _recentre(self, detections: list) -> None:
        """Tracked faces take their detection's centre and change of size (drift cannot build up)."""
        for face in self.faces:
            if face.lost or not detections:
                continue
            best = max(detections, key=lambda d: box_iou(d, face.box))
            if box_iou(best, face.box) < 0.3:
                continue
            side = max(best[2] - best[0], best[3] - best[1])
            if face.detector_ratio is None:
                face.detector_ratio = max(face.box[2] - face.box[0], face.box[3] - face.box[1]) / side
            half_w = (face.box[2] - face.box[0]) / 2
            half_h = (face.box[3] - face.box[1]) / 2
            grow = face.detector_ratio * side / (2 * max(half_w, half_h))
            cx, cy = (best[0] + best[2]) / 2, (best[1] + best[3]) / 2
            face.box = (cx - half_w * grow, cy - half_h * grow, cx + half_w * grow, cy + half_h * grow)

    def _taken(self, box) -> bool:
        return any(not f.lost and box_iou(f.box, box) > 0.3 for f in self.faces)

    def _find_again(self, face: _Face, grey: np.ndarray, detections: list | None) -> None:
        w, h = face.box[2] - face.box[0], face.box[3] - face.box[1]
        if detections is not None:
            candidates = []
            for det in detections:
                if self._taken(det):
                    continue
                side = max(det[2] - det[0], det[3] - det[1]) * (face.detector_ratio or 1.0)
                cx, cy = (det[0] + det[2]) / 2, (det[1] + det[3]) / 2
                box = (cx - side * w / max(w, h) / 2, cy - side * h / max(w, h) / 2,
                       cx + side * w / max(w, h) / 2, cy + side * h / max(w, h) / 2)
                candidates.append((_match(face.whole, _look(grey, box)), box))
            best = max(candidates, default=(0.0, None), key=lambda c: c[0])
            if best[1] is not None and best[0] >= REACQUIRE_DETECTED:
                self._take(face, grey, best[1])
            return
        if face.picture is None or w < 4 or h < 4 or w >= grey.shape[1] or h >= grey.shape[0]:
            return
        template = face.picture
        if template.std() < 1.0:
            return
        scores = cv2.matchTemplate(grey.astype(np.float32), template, cv2.TM_CCOEFF_NORMED)
        scores = np.nan_to_num(scores, nan=-1.0, posinf=-1.0, neginf=-1.0)
        _, score, _, (x, y) = cv2.minMaxLoc(scores)
        dx = x + _peak_offset(scores[y], x) - round(face.picture_box[0])  # the picture's move, sub-pixel
        dy = y + _peak_offset(scores[:, x], y) - round(face.picture_box[1])
        px1, py1, px2, py2 = face.picture_box  # the face's box as it was when last seen whole, moved
        box = (px1 + dx, py1 + dy, px2 + dx, py2 + dy)
        if score >= REACQUIRE_MATCH and _match(face.whole, _look(grey, box)) >= REACQUIRE_MATCH and not self._taken(box):
            self._take(face, grey, box)

    @staticmethod
    def _take(face: _Face, grey: np.ndarray, box) -> None:
        face.box, face.lost = tuple(box), False
        face.points = _points(grey, box)
        face.look = _look(grey, box)


# ---------------------------------------------------------------------------------------------------
# the pass over the video


def track_faces(source, boxes: Sequence, *, detector=None, detect_every: int | None = None,
                threshold: float = SCORE_THRESHOLD,
                crop_mode: str = "square", crop_scale: float = DEFAULT_CROP_SCALE, size: int = 256,
                steady: float = DEFAULT_STEADY, scores: Sequence[float] | None = None,
                progress: Progress | None = None) -> FaceTracks:
    """Follow the faces ``boxes`` (x1,y1,x2,y2 in frame 0's pixels) through ``source`` (a
    :class:`~fom_pipeline.streams.FrameSource`), read a chunk at a time; see the module docstring.

    ``detector``: a FaceDetector to re-centre faces and find lost ones (None: tracking and matching
    only). ``detect_every``: frames between detector runs (default: about twice a second).
    ``steady``: frames the windows are smoothed over (0: the tracked boxes' windows as they are).
    """
    hw = (int(source.height), int(source.width))
    boxes = [face.box for face in make_faces(hw, boxes, scores, crop_mode=crop_mode, crop_scale=crop_scale,
                                             size=size)]  # each checked and fitted to the frame
    scale = min(1.0, TRACK_SIDE / max(hw))
    every = detect_every or max(1, int(round((source.fps or 25.0) / 2)))
    tracked: list[list] = []
    tracker = None
    total = source.frame_count
    for chunk in source.chunks(16):
        for frame in chunk:
            grey = _grey(frame, scale)
            if tracker is None:
                tracker = _Tracker(grey, [_scaled(b, scale) for b in boxes], detector, every, threshold, scale)
            else:
                tracker.step(grey, frame, len(tracked))
            tracked.append(tracker.boxes())
        if progress is not None:
            progress(min(len(tracked), total) if total else len(tracked), total or len(tracked))
    if not tracked:
        raise InputError("the source video has no frames")
    raw = np.full((len(tracked), len(boxes), 4), np.nan)
    for t, row in enumerate(tracked):
        for i, box in enumerate(row):
            if box is not None:
                raw[t, i] = box
    raw[0] = np.asarray(boxes, dtype=np.float64)  # frame 0: exactly as given
    return steady_tracks(raw, hw, size=size, crop_mode=crop_mode, crop_scale=crop_scale, steady=steady,
                         scores=list(scores) if scores is not None else [1.0] * len(boxes))


def _stretches(present: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], present.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2], strict=True))


def steady_tracks(boxes: np.ndarray, image_hw: tuple[int, int], *, size: int = 256, crop_mode: str = "square",
                  crop_scale: float = DEFAULT_CROP_SCALE, steady: float = DEFAULT_STEADY,
                  scores: list | None = None) -> FaceTracks:
    """FaceTracks from per-frame boxes [T, N, 4] (NaN: not seen): centre and size smoothed over
    ``steady`` frames within each stretch the face is seen, then made into crop windows."""
    boxes = np.asarray(boxes, dtype=np.float64)
    present = ~np.isnan(boxes).any(axis=2)
    smooth = boxes.copy()
    windows = np.zeros(boxes.shape, dtype=np.int64)
    for i in range(boxes.shape[1]):
        for start, end in _stretches(present[:, i]):
            part = boxes[start:end, i]
            centre = (part[:, :2] + part[:, 2:]) / 2
            half = np.log((part[:, 2:] - part[:, :2]) / 2)  # sizes smoothed as logs: a zoom is steady too
            if steady and end - start > 1:
                centre, half = smooth_array(centre, steady), smooth_array(half, steady)
            half = np.exp(half)
            smooth[start:end, i] = np.concatenate([centre - half, centre + half], axis=1)
            for t in range(start, end):
                box = tuple(smooth[t, i])
                windows[t, i] = (square_window(box, crop_scale) if crop_mode == "square"
                                 else paddlegan_window(box, image_hw))
    return FaceTracks(smooth, windows, present, (int(image_hw[0]), int(image_hw[1])), int(size), crop_mode,
                      list(scores or [1.0] * boxes.shape[1]))
