"""Keypoints as data, the reference's rules for moving a source's keypoints with a driver, temporal
smoothing of a driver's keypoints, and a fingerprint of the keypoint detector that made them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .arrays import as_numpy, as_tensor
from .errors import InputError


@dataclass
class Keypoints:
    """FOMM keypoints of a batch of frames: ``value`` [B, K, 2] in [-1, 1], ``jacobian`` [B, K, 2, 2] or None."""

    value: torch.Tensor
    jacobian: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.value.shape[0]

    def __getitem__(self, index) -> Keypoints:
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        jac = self.jacobian[index] if self.jacobian is not None else None
        return Keypoints(self.value[index], jac)

    @staticmethod
    def cat(parts: list[Keypoints]) -> Keypoints:
        jac = None if parts[0].jacobian is None else torch.cat([p.jacobian for p in parts])
        return Keypoints(torch.cat([p.value for p in parts]), jac)

    def to(self, device) -> Keypoints:
        return Keypoints(self.value.to(device), None if self.jacobian is None else self.jacobian.to(device))

    def as_dict(self) -> dict:
        out = {"value": self.value}
        if self.jacobian is not None:
            out["jacobian"] = self.jacobian
        return out

    @staticmethod
    def from_dict(d: dict) -> Keypoints:
        return Keypoints(d["value"], d.get("jacobian"))


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of 2-D points (Andrew's monotone chain + shoelace)."""
    pts = sorted(set(map(tuple, np.asarray(points, dtype=np.float64))))
    if len(pts) < 3:
        return 0.0

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2 and cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(reversed(pts))
    hull = np.array(lower[:-1] + upper[:-1])
    x, y = hull[:, 0], hull[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def movement_scale(source: Keypoints, initial: Keypoints) -> float:
    """sqrt(hull area of the source keypoints) / sqrt(hull area of the initial driving keypoints)."""
    src = hull_area(as_numpy(source.value[0]))
    drv = hull_area(as_numpy(initial.value[0]))
    if drv <= 0:
        return 1.0
    return float(np.sqrt(src) / np.sqrt(drv))


def normalize_keypoints(
    source: Keypoints,
    driving: Keypoints,
    initial: Keypoints,
    relative: bool = True,
    relative_jacobian: bool | None = None,
    adapt_scale: bool = True,
    scale: float | None = None,
) -> Keypoints:
    """Driving keypoints as the source should follow them (the reference's ``normalize_kp``).

    relative: move the source keypoints by the driver's displacement from ``initial``;
    relative_jacobian (defaults to ``relative``): apply the driver's jacobian change to the source's;
    adapt_scale: scale the displacement by the hull-area ratio of source and initial keypoints
    (``scale``: that ratio already worked out, e.g. once for a face that moves through a video).
    ``source`` is one frame, or one per driving frame (a source video's frames).
    """
    if relative_jacobian is None:
        relative_jacobian = relative
    if not adapt_scale:
        scale = 1.0
    elif scale is None:
        scale = movement_scale(source, initial)
    value, jacobian = driving.value, driving.jacobian
    if relative:
        value = (driving.value - initial.value) * scale + source.value
        if relative_jacobian and jacobian is not None:
            change = torch.matmul(driving.jacobian, torch.inverse(initial.jacobian))
            jacobian = torch.matmul(change, source.jacobian)
    return Keypoints(value, jacobian)


def _pose_signature(value: np.ndarray) -> np.ndarray:
    """Keypoints centred and scaled by sqrt(hull area), so frames compare by shape, not place or size."""
    centred = value - value.mean(axis=0)
    area = hull_area(centred)
    return centred / np.sqrt(area) if area > 0 else centred


def find_best_frame(source: Keypoints, driving: Keypoints) -> int:
    """Index of the driving frame whose normalized keypoints are closest to the source's."""
    src = _pose_signature(as_numpy(source.value[0], np.float64))
    values = as_numpy(driving.value, np.float64)
    dists = [float(((src - _pose_signature(v)) ** 2).sum()) for v in values]
    return int(np.argmin(dists))


# ---------------------------------------------------------------------------------------------------
# temporal smoothing

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # a Gaussian's width at half height, in sigmas


def smoothing_weights(count: int, frames: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame offsets [2r+1] and per-frame weights [count, 2r+1] of a zero-phase smoother.

    Each frame is a Gaussian-weighted local linear fit of its neighbours (sigma = ``frames`` / 2.355,
    so the Gaussian is ``frames`` wide at half height, cut at 3 sigma). In the middle of a clip the
    window is symmetric and this is a plain Gaussian blur; near the ends, where the window is cut,
    the line fit follows the trend instead of pulling the end frames towards the middle (a
    reflected or shrunk window would: in ``relative`` mode the first frame is the reference, and
    its bias would shift the whole clip). Weights sum to 1 and give linear motion back unchanged.
    """
    sigma = float(frames) / FWHM_PER_SIGMA
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = np.arange(-radius, radius + 1)
    gauss = np.exp(-0.5 * (offsets / sigma) ** 2)
    inside = (np.arange(count)[:, None] + offsets[None, :] >= 0) & (np.arange(count)[:, None] + offsets < count)
    w = gauss[None, :] * inside
    k = offsets[None, :].astype(np.float64)
    s0, s1, s2 = w.sum(1, keepdims=True), (w * k).sum(1, keepdims=True), (w * k * k).sum(1, keepdims=True)
    det = s0 * s2 - s1 * s1
    flat = det <= 1e-12 * s0 * s0  # a single frame: nothing to fit a line to
    weights = np.where(flat, w / s0, w * (s2 - s1 * k) / np.where(flat, 1.0, det))
    return offsets, weights


def _smooth_series(series: torch.Tensor, offsets: np.ndarray, weights: np.ndarray) -> torch.Tensor:
    """Apply per-frame ``weights`` along the first axis of ``series`` [T, ...] (computed in float64)."""
    count = series.shape[0]
    flat = series.detach().cpu().double().reshape(count, -1)
    out = torch.zeros_like(flat)
    index = torch.arange(count)
    for j, offset in enumerate(offsets):
        column = as_tensor(weights[:, j : j + 1])
        out += column * flat[(index + int(offset)).clamp_(0, count - 1)]  # cut-off taps weigh 0
    return out.reshape(series.shape).to(series.dtype)


def smooth_array(series: np.ndarray, frames: float) -> np.ndarray:
    """Any per-frame values [T, ...] smoothed over ``frames`` as keypoints are (zero phase, line fit
    at the ends; see :func:`smoothing_weights`): a face's crop window path through a video, say."""
    series = np.asarray(series, dtype=np.float64)
    if not frames or len(series) < 2:
        return series
    offsets, weights = smoothing_weights(len(series), frames)
    return as_numpy(_smooth_series(as_tensor(series), offsets, weights), np.float64)


def smooth_keypoints(keypoints: Keypoints, frames: float) -> Keypoints:
    """Keypoints (values and jacobians) smoothed over time, ``frames`` wide (0 = unchanged).

    Zero-phase: every driving frame is known before any is generated, so the smoother looks as far
    ahead as behind and the motion is not delayed. See :func:`smoothing_weights`.
    """
    if not math.isfinite(float(frames)) or frames < 0:
        raise InputError(f"smoothing must be 0 (off) or more frames, got {frames}")
    if frames == 0 or len(keypoints) < 2:
        return keypoints
    offsets, weights = smoothing_weights(len(keypoints), frames)
    jacobian = keypoints.jacobian
    if jacobian is not None:
        jacobian = _smooth_series(jacobian, offsets, weights).to(jacobian.device)
    return Keypoints(_smooth_series(keypoints.value, offsets, weights).to(keypoints.value.device), jacobian)


# ---------------------------------------------------------------------------------------------------
# which detector made a set of keypoints

FINGERPRINT_SIZE = 256
FINGERPRINT_TOLERANCE = 0.03  # in keypoint units ([-1, 1] across the crop): ~4 px at 256


def fingerprint_image(size: int = FINGERPRINT_SIZE) -> np.ndarray:
    """A fixed synthetic picture (colour waves and blobs), float32 [1, S, S, 3]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    channels = [0.5 + 0.3 * np.sin(2 * np.pi * (1.3 * xx + 0.7 * yy) + phase) for phase in (0.0, 2.1, 4.2)]
    image = np.stack(channels, axis=-1)
    for cx, cy, radius, colour in ((0.3, 0.35, 0.08, (0.9, 0.2, 0.2)), (0.7, 0.4, 0.06, (0.1, 0.8, 0.3)),
                                   (0.5, 0.7, 0.1, (0.2, 0.3, 0.9))):
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))[..., None]
        image = image * (1 - blob) + np.asarray(colour) * blob
    return np.clip(image, 0.0, 1.0).astype(np.float32)[None]


def detector_fingerprint(model) -> torch.Tensor:
    """The keypoints ``model`` finds on :func:`fingerprint_image`, float32 [K, 2].

    FOMM keypoints are learnt without labels: keypoint 3 of one checkpoint is not keypoint 3 of
    another, so keypoints must drive the model that made them. Equal weights give equal keypoints
    whatever the file format or precision; different detectors give different ones.
    """
    return model.extract_keypoints(fingerprint_image()).value[0].detach().float().cpu()


def same_detector(a: torch.Tensor, b: torch.Tensor, tolerance: float = FINGERPRINT_TOLERANCE) -> bool:
    """Whether two :func:`detector_fingerprint` results come from the same keypoint detector."""
    return a.shape == b.shape and bool((a.float() - b.float()).abs().max() <= tolerance)
