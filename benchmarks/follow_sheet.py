"""Contact sheet of the tracking model following a driver, through the command line.

The tracking model (fom_pipeline.testing.tracking_model: constructed weights, nothing trained) is run
by ``python -m fom_pipeline`` on a generated photo of two marked faces with a generated driving clip
whose red mark traces a figure of eight. Each row of the sheet is one driving frame (left, the path
drawn in) and the output frame (right) with a ring where the driver says each face's red mark must
be; the script prints the measured tracking error per face.

    python benchmarks/follow_sheet.py [OUT.png] [--frames 24] [--rows 6]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from motion_scene import (  # noqa: E402
    SceneFace,
    boxes_text,
    driver_frames,
    expected_relative,
    group_photo,
    red_tracks,
    tracking_error,
)

from fom_pipeline.testing import FACE_MARKS, tracking_model, write_clip  # noqa: E402
from fom_pipeline.video import iter_video_frames  # noqa: E402

FACES = [SceneFace((50, 50, 150, 150)), SceneFace((270, 70, 350, 150))]
PHOTO_SIZE = (420, 220)  # width, height
ROW_HEIGHT = 160


def figure_eight(frames: int, width: float = 24.0, height: float = 12.0) -> np.ndarray:
    t = 2 * np.pi * np.arange(frames) / frames
    return np.asarray(FACE_MARKS["red"]) + np.stack([width * np.sin(t), height * np.sin(2 * t)], axis=1)


def bgr(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(image[:, :, ::-1])


def ring(image: np.ndarray, centre, radius: int, colour, scale: float) -> None:
    x, y = (int(round(v * scale * 4)) for v in centre)  # 2 fractional bits
    cv2.circle(image, (x, y), radius * 4, colour, 1, cv2.LINE_AA, shift=2)


def row(t: int, driver: np.ndarray, path: np.ndarray, frame: np.ndarray, expected: list) -> np.ndarray:
    scale_d = ROW_HEIGHT / driver.shape[0]
    left = cv2.resize(bgr(driver), (ROW_HEIGHT, ROW_HEIGHT), interpolation=cv2.INTER_AREA)
    points = np.round((path + 0.5) * scale_d - 0.5).astype(np.int32)
    cv2.polylines(left, [points], True, (40, 40, 200), 1, cv2.LINE_AA)
    scale_o = ROW_HEIGHT / frame.shape[0]
    right = cv2.resize(bgr(frame), (round(frame.shape[1] * scale_o), ROW_HEIGHT), interpolation=cv2.INTER_AREA)
    for centre in expected:
        ring(right, centre, 9, (255, 255, 255), scale_o)
    out = np.concatenate([left, np.full((ROW_HEIGHT, 6, 3), 255, np.uint8), right], axis=1)
    cv2.putText(out, f"frame {t}", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(REPO / "docs" / "tracking_model_follows.png"))
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--rows", type=int, default=6)
    args = parser.parse_args()

    path = figure_eight(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tracking_model().save(tmp / "tracking.safetensors")
        write_clip(tmp / "driver.mp4", driver_frames(path))
        photo = group_photo(*PHOTO_SIZE, FACES)
        cv2.imwrite(str(tmp / "photo.png"), bgr(photo))
        subprocess.run([sys.executable, "-m", "fom_pipeline", "--source_image", tmp / "photo.png",
                        "--driving_video", tmp / "driver.mp4", "--faces", boxes_text(FACES), "--multi_person",
                        "--relative", "--weight_path", tmp / "tracking.safetensors", "--cpu", "--quiet",
                        "--batch_size", "8", "--output", tmp, "--filename", "out.mp4"], cwd=REPO, check=True)
        frames = np.concatenate(list(iter_video_frames(tmp / "out.mp4")))
        drivers = np.stack(list(driver_frames(path)))

    tracks = red_tracks(frames, FACES)
    expected = np.stack([expected_relative(face, path) for face in FACES], axis=1)
    for i, face in enumerate(FACES):
        err = tracking_error(tracks[:, i], expected[:, i])
        print(f"face {i + 1} (crop scale {face.scale:.3f}): {len(err)} frames, tracking error "
              f"max {err.max():.2f} px, mean {err.mean():.2f} px")
    picks = np.linspace(0, args.frames - 1, args.rows).round().astype(int)
    sheet = np.concatenate([row(t, drivers[t], path, frames[t], expected[t]) for t in picks], axis=0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
