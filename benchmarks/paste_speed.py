"""Seconds per frame to paste animated faces back into a photo (the step after the generator), for
each colour match, on the seed's 1200x900 painting with its five faces. Not a test: it prints numbers.

    python benchmarks/paste_speed.py [--frames 8] [--image PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fom_pipeline.faces import make_faces, paste_faces  # noqa: E402

SHARED = Path(os.environ.get("FOM_SHARED_DIR", REPO.parent / "shared"))
# the five faces of the seed's painting (x1, y1, x2, y2), as tests/kit.py has them
BOXES = [(195, 180, 310, 300), (410, 305, 505, 440), (600, 185, 695, 300), (695, 315, 790, 440),
         (1085, 280, 1180, 395)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--image", type=Path, default=SHARED / "media" / "fom_source_image_multi_person.jpg")
    args = parser.parse_args()
    photo = cv2.cvtColor(cv2.imread(str(args.image)), cv2.COLOR_BGR2RGB)
    faces = make_faces(photo.shape[:2], BOXES, size=256)
    animated = np.random.default_rng(1).random((len(faces), args.frames, 256, 256, 3), dtype=np.float32)
    paste_faces(photo, faces, animated[:, :1])  # warm-up
    print(f"{photo.shape[1]}x{photo.shape[0]} photo, {len(faces)} faces, {args.frames} frames")
    for color_match in (False, "rgb", "lab"):
        start = time.perf_counter()
        paste_faces(photo, faces, animated, feather=8, color_match=color_match)
        per_frame = (time.perf_counter() - start) / args.frames
        print(f"color_match={color_match!s:<5} {per_frame * 1000:7.1f} ms/frame")


if __name__ == "__main__":
    main()
