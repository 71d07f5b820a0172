"""Keypoint smoothing, measured end to end with the tracking model: how much per-frame jitter is left,
how much of a real sway is kept, and whether the motion is late.

The driver is a marked test face (fom_pipeline.testing.marked_face) swaying sideways, 12 px, once every
1.2 s at 25 fps, rendered twice: clean, and with independent per-frame jitter (Gaussian, 1.5 px in x
and y) on each mark, as keypoints of a real face tremble from frame to frame. A still marked face is
animated with each (relative motion, first frame as reference) at every smoothing strength, and the
red mark is measured in every generated frame (the tracking model moves the face exactly with it):

- jitter left: spread over time of (jittered run - clean run), against the same with smoothing off;
- motion kept: amplitude of the sway (a sine fitted at its period) against smoothing off;
- lag: delay of that sine's phase against smoothing off, in frames (negative = early).

    python benchmarks/smoothing.py [--frames 150] [--strengths 0,3,5,8] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fom_pipeline.keypoints import smooth_keypoints  # noqa: E402
from fom_pipeline.pipeline import DrivingKeypoints, FaceAnimation  # noqa: E402
from fom_pipeline.testing import FACE_MARKS, find_mark, marked_face, tracking_model  # noqa: E402

FPS = 25.0
PERIOD_S = 1.2
AMPLITUDE_PX = 12.0
JITTER_PX = 1.5


def driver(frames: int, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """The swaying marked face, float32 [T, 256, 256, 3], its marks moved by ``jitter`` px noise."""
    sway = AMPLITUDE_PX * np.sin(2 * np.pi * np.arange(frames) / (PERIOD_S * FPS))
    out = np.empty((frames, 256, 256, 3), np.float32)
    for t in range(frames):
        marks = {colour: (u + sway[t] + rng.normal(0, jitter), v + rng.normal(0, jitter)) if jitter else
                 (u + sway[t], v) for colour, (u, v) in FACE_MARKS.items()}
        out[t] = marked_face(256, marks)
    return out


def red_track(model, keypoints, smooth: int) -> np.ndarray:
    """Where the red mark of the animated still face is in every generated frame, [T, 2] px."""
    driving = DrivingKeypoints(smooth_keypoints(keypoints, smooth), FPS)
    animation = FaceAnimation(model, marked_face(256)[None], driving, relative=True, adapt_scale=False,
                              batch_size=16)
    return np.array([find_mark(frame, "red") for batch in animation.batches() for frame in batch[0]])


def sine_fit(x: np.ndarray, period: float) -> tuple[float, float]:
    """Amplitude and delay (frames) of the sine at ``period`` frames that fits ``x`` best."""
    phase = 2 * np.pi * np.arange(len(x)) / period
    basis = np.stack([np.sin(phase), np.cos(phase), np.ones_like(phase)], axis=1)
    (a, b, _), *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(a, b)), float(-np.arctan2(b, a) / (2 * np.pi) * period)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=150, help="driving frames (default 150: 6 s, five sways)")
    p.add_argument("--strengths", default="0,3,5,8", help="smoothing strengths in frames (0 first)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    strengths = [int(s) for s in args.strengths.split(",")]
    if strengths[0] != 0:
        strengths.insert(0, 0)
    t0 = time.perf_counter()
    model = tracking_model()
    rng = np.random.default_rng(args.seed)
    clean_kp = model.extract_keypoints(driver(args.frames, 0.0, rng))
    noisy_kp = model.extract_keypoints(driver(args.frames, JITTER_PX, rng))
    period = PERIOD_S * FPS
    rows, base = [], None
    for n in strengths:
        clean, noisy = red_track(model, clean_kp, n), red_track(model, noisy_kp, n)
        jitter = float(np.sqrt(((noisy - clean) - (noisy - clean).mean(axis=0)).var(axis=0).sum()))
        amplitude, delay = sine_fit(clean[:, 0], period)
        if base is None:
            base = (jitter, amplitude, delay)
            print(f"smoothing off: sway in the output {amplitude:.2f} px (driver {AMPLITUDE_PX:g} px), "
                  f"jitter {jitter:.2f} px (driver {JITTER_PX * np.sqrt(2):.2f} px per mark)")
        rows.append((n, 100 * jitter / base[0], 100 * amplitude / base[1], delay - base[2]))
    print(f"\n{args.frames} frames at {FPS:g} fps, a {PERIOD_S:g} s sway of {AMPLITUDE_PX:g} px, "
          f"jitter {JITTER_PX:g} px per axis\n")
    print("| smooth (frames) | jitter left | motion kept | lag (frames) |")
    print("| --- | --- | --- | --- |")
    for n, left, kept, lag in rows:
        print(f"| {n} | {left:.0f}% | {kept:.1f}% | {lag:+.2f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
