"""Face boxes: ``x1,y1,x2,y2`` text typed by hand, and the overlap of two boxes."""

from __future__ import annotations

import re

from ..errors import InputError

Box = tuple[float, float, float, float]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BOX_RE = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*$")


def parse_boxes(text: str) -> list[Box]:
    """Parse ``"x1,y1,x2,y2;x1,y1,x2,y2"`` (newlines also separate boxes) into float boxes."""
    if not isinstance(text, str):
        raise InputError(f"boxes must be text like 'x1,y1,x2,y2;...', got {type(text).__name__}")
    parts = [p for p in re.split(r"[;\n]", text) if p.strip()]
    if not parts:
        raise InputError("no boxes given; write them as x1,y1,x2,y2;x1,y1,x2,y2 in image pixels")
    boxes = []
    for i, part in enumerate(parts):
        match = _BOX_RE.match(part)
        if not match:
            raise InputError(
                f"box {i + 1} {part.strip()!r} is not x1,y1,x2,y2 (four numbers separated by commas)"
            )
        x1, y1, x2, y2 = (float(v) for v in match.groups())
        if x2 <= x1 or y2 <= y1:
            raise InputError(f"box {i + 1} {part.strip()!r} is empty: need x2 > x1 and y2 > y1")
        boxes.append((x1, y1, x2, y2))
    return boxes


def box_iou(a, b) -> float:
    """Intersection over union of two (x1,y1,x2,y2) boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
