"""Seconds per output frame for the seed's job, timed at the engine level (no CLI, no video I/O).

The seed's command animates 5 faces of fom_source_image_multi_person.jpg with fom_dv.mp4; its
PaddleGAN app takes 25.6 s per output frame on these CPUs (5.4 s for one face). Here: full-size
vox-256 architecture with random weights (real weights cannot be downloaded), 5 square crops of the
painting, N driving frames from the clip, driving keypoints computed once and shared by every face,
then each face animated. Face detection, pasting and encoding are not included. Not a test.

    python benchmarks/seed_command.py [--frames 8] [--faces 5] [--batch 8] [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fom_pipeline.testing import full_config, random_model

SEED_SECONDS_PER_FRAME = 25.6  # PaddleGAN app, 5 faces, these CPUs
SEED_SECONDS_ONE_FACE = 5.4
SHARED = Path(os.environ.get("FOM_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))


def face_crops(path: Path, faces: int, size: int) -> np.ndarray:
    """``faces`` square crops side by side across the painting (stand-ins for detected faces)."""
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    side = min(h, w // faces)
    top = (h - side) // 2
    crops = []
    for i in range(faces):
        left = i * (w // faces) + (w // faces - side) // 2
        crop = image[top : top + side, left : left + side]
        crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(crops).astype(np.float32) / 255.0


def driving_frames(path: Path, frames: int, size: int) -> np.ndarray:
    """The clip's first ``frames`` frames, centre-square cropped and resized."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < frames:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        side = min(h, w)
        y, x = (h - side) // 2, (w - side) // 2
        frame = cv2.resize(frame[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    if not out:
        raise SystemExit(f"could not read frames from {path}")
    return np.stack(out).astype(np.float32) / 255.0


def run(model, sources: np.ndarray, driving: np.ndarray, batch: int) -> tuple[float, float, list[torch.Tensor]]:
    """(keypoint seconds, total seconds, frames per face) for one pass of the job."""
    start = time.perf_counter()
    kp = model.extract_keypoints(driving, batch_size=batch)
    t_kp = time.perf_counter() - start
    outs = [model.animate(face, kp, relative=True, adapt_scale=True, batch_size=batch) for face in sources]
    return t_kp, time.perf_counter() - start, outs


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8, help="driving frames")
    ap.add_argument("--faces", type=int, default=5, help="faces animated per output frame")
    ap.add_argument("--batch", type=int, default=8, help="frames per network batch")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = 256
    sources = face_crops(SHARED / "media" / "fom_source_image_multi_person.jpg", args.faces, size)
    driving = driving_frames(SHARED / "media" / "fom_dv.mp4", args.frames, size)
    n = driving.shape[0]
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {load:.2f}; "
          f"{args.faces} faces x {n} frames, batch {args.batch}")
    results = {}
    for precision in args.precisions:
        model = random_model(full_config("vox-256"), seed=0, image_size=size, precision=precision)
        run(model, sources[:1], driving[:2], args.batch)  # warm-up (allocator, oneDNN kernels, folded weights)
        t_kp, total, outs = run(model, sources, driving, args.batch)
        results[precision] = outs
        per_frame = total / n
        print(f"{precision}: {per_frame:.2f} s per output frame ({per_frame / args.faces:.3f} s per face-frame; "
              f"driving keypoints {t_kp / n:.3f} s/frame); speed-up vs the seed's {SEED_SECONDS_PER_FRAME} s: "
              f"{SEED_SECONDS_PER_FRAME * args.faces / 5 / per_frame:.1f}x", flush=True)
    if "fp32" in results and "bf16" in results:
        worst = min(psnr(a, b) for a, b in zip(results["fp32"], results["bf16"], strict=True))
        print(f"PSNR bf16 vs fp32 (worst face): {worst:.1f} dB")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
