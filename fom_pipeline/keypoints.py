"""Keypoints as data, and the reference's rules for moving a source's keypoints with a driver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
    src = hull_area(source.value[0].detach().cpu().numpy())
    drv = hull_area(initial.value[0].detach().cpu().numpy())
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
) -> Keypoints:
    """Driving keypoints as the source should follow them (the reference's ``normalize_kp``).

    relative: move the source keypoints by the driver's displacement from ``initial``;
    relative_jacobian (defaults to ``relative``): apply the driver's jacobian change to the source's;
    adapt_scale: scale the displacement by the hull-area ratio of source and initial keypoints.
    """
    if relative_jacobian is None:
        relative_jacobian = relative
    scale = movement_scale(source, initial) if adapt_scale else 1.0
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
    src = _pose_signature(source.value[0].detach().cpu().double().numpy())
    values = driving.value.detach().cpu().double().numpy()
    dists = [float(((src - _pose_signature(v)) ** 2).sum()) for v in values]
    return int(np.argmin(dists))
