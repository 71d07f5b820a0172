"""Frames per second of the engine on full-size architectures with random weights.

Compares, in one run on the same machine: the reference's way (one frame at a time, the source
re-encoded every frame, fp32, the networks in their trained form), ours in fp32 (batched, source
features cached, the inference form) and ours in bf16, reports the PSNR of bf16 output against fp32
and what precision="auto" picks on this machine. Not a test: it prints numbers.

    python benchmarks/speed.py [--models vox-256 vox-512 vox-mobile-256] [--frames 16] [--batch 8]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from fom_pipeline.keypoints import Keypoints, normalize_keypoints
from fom_pipeline.precision import choose_precision
from fom_pipeline.testing import full_config, random_model

MODELS = {"vox-256": ("vox-256", 256), "vox-512": ("vox-256", 512), "vox-mobile-256": ("vox-mobile-256", 256)}


def reference_way(model, source, driving) -> float:
    """The original demo loop: per frame, keypoints then the full generator forward from the source,
    on the trained form of the networks (the paper's modules: unfused, channels-first)."""
    x = source.permute(0, 3, 1, 2)
    start = time.perf_counter()
    with torch.no_grad():
        kp_source = model.kp_detector(x)
        kp_initial = None
        for frame in driving:
            kp = model.kp_detector(frame.unsqueeze(0).permute(0, 3, 1, 2))
            kp_initial = kp_initial or kp
            norm = normalize_keypoints(Keypoints.from_dict(kp_source), Keypoints.from_dict(kp),
                                       Keypoints.from_dict(kp_initial), True, True, True)
            model.generator(x, norm.as_dict(), kp_source)
    return time.perf_counter() - start


def ours(model, source, driving, batch) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    kp = model.extract_keypoints(driving, batch_size=batch)
    frames = model.animate(source, kp, relative=True, adapt_scale=True, batch_size=batch)
    return time.perf_counter() - start, frames


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--frames", type=int, default=16, help="driving frames per measurement")
    ap.add_argument("--batch", type=int, default=8, help="our batch size")
    ap.add_argument("--skip-reference", action="store_true", help="only time our fp32 and bf16 paths")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"precision auto on this CPU: {choose_precision('auto', torch.device('cpu'))}")
    for name in args.models:
        config_name, size = MODELS[name]
        fp32 = random_model(full_config(config_name), seed=0, image_size=size)
        bf16 = random_model(full_config(config_name), seed=0, image_size=size, precision="bf16")
        source = torch.rand(1, size, size, 3)
        driving = (source + 0.05 * torch.randn(args.frames, size, size, 3)).clamp(0, 1)
        ours(fp32, source, driving[:2], args.batch)  # warm-up (allocator, oneDNN kernels)
        ours(bf16, source, driving[:2], args.batch)
        t32, out32 = ours(fp32, source, driving, args.batch)
        t16, out16 = ours(bf16, source, driving, args.batch)
        n = args.frames
        line = f"{name}: ours fp32 {n / t32:.2f} fps ({1000 * t32 / n:.0f} ms/frame), " \
               f"bf16 {n / t16:.2f} fps ({1000 * t16 / n:.0f} ms/frame)"
        if not args.skip_reference:
            tref = reference_way(fp32, source, driving)
            line = f"{name}: reference {n / tref:.2f} fps ({1000 * tref / n:.0f} ms/frame); " + line.split(": ", 1)[1]
            line += f"; speed-up fp32 {tref / t32:.2f}x, bf16 {tref / t16:.2f}x"
        line += f"; PSNR bf16 vs fp32 {psnr(out16, out32):.1f} dB"
        print(line, flush=True)


if __name__ == "__main__":
    main()
