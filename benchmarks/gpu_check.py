"""One-shot GPU check (run on a CUDA machine): golden parity on the GPU, fp16/bf16 against fp32,
and frames per second of the full-size models. Prints numbers; exits non-zero if parity fails.

    python benchmarks/gpu_check.py --golden DIR   # DIR holds fomm-tiny-vox.* and paddle-mobile.*
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

import fom_pipeline as fp
from fom_pipeline.testing import full_config, random_model


def psnr(a, b) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def parity(golden: Path, device: str) -> bool:
    ok = True
    for name, ext, key in (("fomm-tiny-vox", ".pth.tar", "align_true.rel_adapt.prediction"),
                           ("paddle-mobile", ".pdparams", "rel_adapt.prediction")):
        g = load_file(str(golden / f"{name}.safetensors"))
        src, drv = g["input.source"].permute(0, 2, 3, 1), g["input.driving"].permute(0, 2, 3, 1)
        ref = g[key].permute(0, 2, 3, 1)
        for precision in ("fp32", "bf16", "fp16"):
            model = fp.load_model(golden / f"{name}{ext}", device=device, precision=precision)
            out = model.animate(src, model.extract_keypoints(drv), relative=True, adapt_scale=True)
            err = float((out - ref).abs().max())
            line = f"{name} {device} {precision}: max abs err {err:.2e}, PSNR vs reference {psnr(out, ref):.1f} dB"
            if precision == "fp32":
                ok &= err <= 1e-4
                line += " (<= 1e-4 required)"
            print(line, flush=True)
    return ok


def speed(device: str, frames: int) -> None:
    for label, config, size, batch in (("vox-256", "vox-256", 256, 16), ("vox-512", "vox-256", 512, 8),
                                       ("vox-mobile-256", "vox-mobile-256", 256, 16)):
        source = torch.rand(1, size, size, 3)
        driving = (source + 0.05 * torch.randn(frames, size, size, 3)).clamp(0, 1)
        outs = {}
        for precision in ("fp32", "bf16", "fp16"):
            model = random_model(full_config(config), seed=0, image_size=size, device=device, precision=precision)
            kp = model.extract_keypoints(driving[:batch], batch_size=batch)
            model.animate(source, kp, batch_size=batch)  # warm-up
            torch.cuda.synchronize()
            start = time.perf_counter()
            kp = model.extract_keypoints(driving, batch_size=batch)
            outs[precision] = model.animate(source, kp, batch_size=batch)
            torch.cuda.synchronize()
            t = time.perf_counter() - start
            print(f"{label} {device} {precision}: {frames / t:.1f} fps ({1000 * t / frames:.1f} ms/frame, batch {batch})"
                  + ("" if precision == "fp32" else f", PSNR vs fp32 {psnr(outs[precision], outs['fp32']):.1f} dB"),
                  flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--golden", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=64)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
    ok = parity(args.golden, "cuda")
    speed("cuda", args.frames)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
