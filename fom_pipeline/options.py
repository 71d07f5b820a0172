"""The animation's and the paste's options as small checked values, shared by every front end.

The command line, the ComfyUI nodes and the Python API build the same :class:`AnimationOptions` and
:class:`PasteOptions`; each checks itself when made, so a bad value fails with one line naming the
input and its range before any network runs.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

from .errors import InputError

RATIO_RANGE = (0.1, 1.0)  # paste circle radius as a fraction of the crop height
DEFAULT_RATIO = 0.4  # PaddleGAN's demo's
PASTE_SHAPES = ("circle", "rect")
PASTE_ORDERS = ("given", "smallest_on_top")
COLOR_SPACES = ("lab", "rgb")
MAX_FRAME_RATE = 240.0  # frames per second: a result's --fps, a motion file's stored rate


def frame_rate_problem(fps) -> str | None:
    """What is wrong with ``fps`` as a frame rate ("must be above 0 ..."), or None when it is usable.
    The one rule for every rate a user or a file gives (``--fps``, a motion file's fps)."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        return f"expected frames per second, got {fps!r}"
    if not math.isfinite(value) or not 0 < value <= MAX_FRAME_RATE:
        return f"must be above 0 and at most {MAX_FRAME_RATE:g} frames per second, got {fps}"
    return None


def check_ratio(ratio: float) -> float:
    """``ratio`` as a float in :data:`RATIO_RANGE`, else a one-line error."""
    lo, hi = RATIO_RANGE
    value = float(ratio)
    if not lo <= value <= hi:
        raise InputError(f"ratio {ratio:g} is out of range; use {lo} to {hi} (PaddleGAN's demo uses {DEFAULT_RATIO})")
    return value


def color_space(color_match: bool | str | None) -> str | None:
    """The colour space a ``color_match`` value asks for: None (off), "lab" (True) or "rgb"."""
    if color_match is False or color_match is None or color_match == "none":
        return None
    if color_match is True:
        return "lab"
    if color_match in COLOR_SPACES:
        return color_match
    raise InputError(f"color_match {color_match!r} is unknown; use False, True, 'lab' or 'rgb'")


@dataclass(frozen=True)
class AnimationOptions:
    """How the driving motion moves a face (PaddleGAN's demo's ``relative`` / ``adapt_scale`` flags and ours).

    ``relative_jacobian`` None follows ``relative``; ``reference_frame`` is a driving frame index
    ("first" is 0) or "best" (the frame whose pose matches each face best).
    """

    relative: bool = True
    adapt_scale: bool = True
    relative_jacobian: bool | None = None
    reference_frame: int | str = 0

    def __post_init__(self):
        ref = self.reference_frame
        if ref == "first":
            ref = 0
        elif isinstance(ref, numbers.Integral) and not isinstance(ref, bool):
            ref = int(ref)
        if not (ref == "best" or (type(ref) is int and ref >= 0)):  # True is an int too
            raise InputError(f"reference frame {ref!r} is unknown; use a driving frame index (0 or more), "
                             "'first' or 'best'")
        object.__setattr__(self, "reference_frame", ref)

    def check_against(self, frames: int) -> None:
        """A reference frame index must lie inside a driving clip of ``frames`` frames."""
        ref = self.reference_frame
        if isinstance(ref, int) and ref >= frames:
            raise InputError(f"reference frame {ref} is outside the driving video (frames 0..{frames - 1})")

    def as_kwargs(self) -> dict:
        """The keyword arguments of :meth:`FOMModel.animate_batches`."""
        return dict(relative=self.relative, adapt_scale=self.adapt_scale, relative_jacobian=self.relative_jacobian,
                    reference_frame=self.reference_frame)


@dataclass(frozen=True)
class PasteOptions:
    """How animated faces are pasted (see :mod:`fom_pipeline.faces.paste`): circle ``ratio`` in
    :data:`RATIO_RANGE`, ``feather`` pixels (None: 10% of the radius), ``color_match`` (False, True,
    "lab", "rgb"), ``shape`` circle or rect, ``order`` of compositing."""

    ratio: float = DEFAULT_RATIO
    feather: float | None = None
    color_match: bool | str = False
    shape: str = "circle"
    order: str = "given"

    def __post_init__(self):
        check_ratio(self.ratio)
        if self.feather is not None and (not math.isfinite(self.feather) or self.feather < 0):
            raise InputError(f"feather {self.feather} must be 0 (hard edge) or more pixels")
        if self.order not in PASTE_ORDERS:
            raise InputError(f"order {self.order!r} is unknown; choose one of {', '.join(PASTE_ORDERS)}")
        if self.shape not in PASTE_SHAPES:
            raise InputError(f"shape {self.shape!r} is unknown; choose 'circle' or 'rect'")
        color_space(self.color_match)

    @property
    def color_space(self) -> str | None:
        return color_space(self.color_match)

    def as_kwargs(self) -> dict:
        """The keyword arguments of :func:`fom_pipeline.faces.paste_faces`."""
        return dict(ratio=self.ratio, feather=self.feather, color_match=self.color_match, shape=self.shape,
                    order=self.order)


def paddlegan_paste(options: PasteOptions, crop_mode: str, faces: int) -> tuple[PasteOptions, bool]:
    """The paste for ``faces`` faces cut with ``crop_mode``, and whether to cast the animated faces to 8 bits
    (truncating) before pasting. PaddleGAN's own crop ("paddlegan") is pasted as PaddleGAN's demo pastes
    it: a lone face as its whole crop rectangle, every face cast to uint8 first; other crops as asked."""
    if crop_mode != "paddlegan":
        return options, False
    return (replace(options, shape="rect") if faces == 1 else options), True
