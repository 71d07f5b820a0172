"""Contact sheet for eyeballing the faces pipeline on the 5-face painting.

Writes one PNG: the painting with numbered face boxes (hand boxes, or S3FD detections with
``--detect`` when real weights are present) and their crop windows, the five 256x256 crops (square
and paddlegan mode), and a pasted frame where every crop is pasted back flipped left-right (so the
paste is visible) with the default feather and colour match.

    python benchmarks/contact_sheet.py [OUT.png] [--detect] [--ratio 0.4]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fom_pipeline.faces import crop_faces, detect_faces, load_face_detector, make_faces, paste_faces  # noqa: E402
from fom_pipeline.faces.paste import circle_radius  # noqa: E402

HAND_BOXES = [
    (195.0, 180.0, 310.0, 300.0),
    (410.0, 305.0, 505.0, 440.0),
    (600.0, 185.0, 695.0, 300.0),
    (695.0, 315.0, 790.0, 440.0),
    (1085.0, 280.0, 1180.0, 395.0),
]


def to_u8(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)


def annotate(image, faces, ratio) -> np.ndarray:
    canvas = to_u8(image)
    for i, face in enumerate(faces):
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), 2)
        wx1, wy1, wx2, wy2 = face.crop_box
        cv2.rectangle(canvas, (wx1, wy1), (wx2, wy2), (0, 200, 255), 1)
        centre = (int((wx1 + wx2) / 2), int((wy1 + wy2) / 2))
        cv2.circle(canvas, centre, int(circle_radius(face, ratio)), (255, 120, 0), 1)
        label = f"{i + 1} {face.score:.2f}"
        cv2.putText(canvas, label, (x1, max(20, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4)
        cv2.putText(canvas, label, (x1, max(20, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 255, 0), 2)
    return canvas


def strip(crops: np.ndarray, title: str, width: int) -> np.ndarray:
    tiles = []
    for i, crop in enumerate(crops):
        tile = to_u8(crop)
        cv2.putText(tile, str(i + 1), (8, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 255, 0), 2)
        tiles.append(tile)
    row = np.hstack(tiles)
    row = cv2.resize(row, (width, int(row.shape[0] * width / row.shape[1])))
    head = np.zeros((30, width, 3), np.uint8)
    cv2.putText(head, title, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
    return np.vstack([head, row])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(REPO / "test-artifacts" / "contact_sheet.png"))
    parser.add_argument(
        "--detect", action="store_true", help="use S3FD (needs real weights) instead of hand boxes"
    )
    parser.add_argument("--ratio", type=float, default=0.4)
    shared = Path(os.environ.get("FOM_SHARED_DIR", REPO.parent / "shared"))
    parser.add_argument("--image", default=str(shared / "media" / "fom_source_image_multi_person.jpg"))
    args = parser.parse_args(argv)

    image = cv2.cvtColor(cv2.imread(args.image), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    if args.detect:
        found = detect_faces(load_face_detector(allow_download=False), image)
        boxes, scores = [b for b, _ in found], [s for _, s in found]
    else:
        boxes, scores = HAND_BOXES, None
    faces = make_faces(image.shape[:2], boxes, scores, size=256)
    seed_faces = make_faces(image.shape[:2], boxes, scores, crop_mode="paddlegan", size=256)
    crops = crop_faces(image, faces)
    seed_crops = crop_faces(image, seed_faces)
    animated = crops[:, None, :, ::-1]  # mirrored faces stand in for animated ones
    pasted = paste_faces(image, faces, animated, ratio=args.ratio, color_match="lab")[0]

    width = image.shape[1]
    sheet = np.vstack(
        [
            annotate(image, faces, args.ratio),
            strip(crops, "square crops (default, crop_scale 2.0)", width),
            strip(seed_crops, "paddlegan crops (the seed's window, stretched to square)", width),
            to_u8(pasted),
        ]
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet)
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
