"""Which detections count as faces: filter by score and size, drop duplicates, keep and order the largest."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InputError
from .boxes import Box, box_iou

ORDERS = ("left_to_right", "largest", "top_to_bottom")
# The detector's defaults, for every front end: PaddleGAN's demo keeps S3FD faces scoring 0.5 or more,
# and of two boxes overlapping by more than 0.3 (intersection over union) only one.
SCORE_THRESHOLD = 0.5
OVERLAP = 0.3


def select_faces(
    detections: Sequence,
    threshold: float = SCORE_THRESHOLD,
    max_faces: int = 0,
    min_size: float = 0,
    order: str = "left_to_right",
    iou_threshold: float = OVERLAP,
) -> list[tuple[Box, float]]:
    """Filter, de-duplicate, keep the largest and order raw (x1,y1,x2,y2,score) detections of one image.

    Boxes scoring under ``threshold`` or smaller than ``min_size`` go; of two boxes overlapping by
    more than ``iou_threshold`` the larger stays. ``max_faces`` (0 = all) then keeps the largest
    faces, and only then are the kept faces numbered by ``order``. Largest, not best-scoring: the
    PaddleGAN's demo means to sort its boxes by area, largest first, and animates the first one without
    --multi_person (its sort result is discarded, so it really took S3FD's best-scoring box; every
    kept box already passed the score threshold, and size is what a user sees). Equal areas keep the
    higher score first.
    """
    if order not in ORDERS:
        raise InputError(f"face order {order!r} is unknown; choose one of {', '.join(ORDERS)}")
    if not 0 <= threshold <= 1:
        raise InputError(f"score threshold {threshold} must be between 0 and 1")
    if int(max_faces) < 0:
        raise InputError(f"max_faces {max_faces} must be 0 (all) or more")
    kept = []
    for det in detections:
        x1, y1, x2, y2 = (float(v) for v in det[:4])
        score = float(det[4]) if len(det) > 4 else 1.0
        if score < threshold or min(x2 - x1, y2 - y1) < min_size or x2 <= x1 or y2 <= y1:
            continue
        kept.append(((x1, y1, x2, y2), score))
    kept.sort(key=lambda f: (-(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]), -f[1]))  # largest first
    unique: list = []
    for face in kept:  # the larger of two overlapping boxes wins
        if all(box_iou(face[0], other[0]) <= iou_threshold for other in unique):
            unique.append(face)
    if max_faces:
        unique = unique[: int(max_faces)]  # the largest faces, before they are ordered
    if order == "left_to_right":
        unique.sort(key=lambda f: ((f[0][0] + f[0][2]) / 2, f[0][1]))
    elif order == "top_to_bottom":
        unique.sort(key=lambda f: ((f[0][1] + f[0][3]) / 2, f[0][0]))
    else:
        unique.sort(key=lambda f: -(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))
    return unique


def _face_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"face index {text!r} is not a number; write indices like 1,3 or 2-4") from None


def parse_face_numbers(text: str, count: int) -> list[int]:
    """"1,3,5-7" (1-based, as the preview numbers faces) -> 0-based indices into ``count`` faces.

    Each number and each range's ends are checked against ``count`` before the range is expanded,
    so ``1-20000000`` is refused at once instead of first becoming twenty million numbers; what is
    returned is at most ``count`` numbers per comma-separated part.
    """
    out: list[int] = []
    for part in str(text).replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:] and not part.startswith("-"):
            first_text, last_text = part.split("-", 1)
            ends = (_face_number(first_text.strip()), _face_number(last_text.strip()))
        else:
            ends = (_face_number(part),) * 2
        for number in ends:
            if not 1 <= number <= count:
                raise InputError(f"face index {number} is out of range; there are {count} faces (numbered 1..{count})")
        if ends[1] < ends[0]:
            raise InputError(f"face range {part!r} runs backwards; write it as {ends[1]}-{ends[0]}")
        out.extend(range(ends[0] - 1, ends[1]))
    if not out:
        raise InputError("no face indices given; write indices like 1,3 or 2-4 (numbered as in the preview)")
    return out
