"""What face restoration costs per animated face and frame (not a test: it prints numbers).

Each model is a real spandrel architecture with random weights (nothing downloads here; speed does
not depend on the weights): GFPGAN v1.4's and RestoreFormer's released sizes, the small RestoreFormer
the tests use, and Real-ESRGAN Compact. They run through the engine's FaceRestorer exactly as in a
render: 256 px animated crops resized to the model's size (512 px for face restorers), restored a
few at a time, resized back.

    python benchmarks/restore_speed.py                      # CPU, all models
    python benchmarks/restore_speed.py --device cuda --crops 32 --models gfpgan restoreformer
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import restorers  # noqa: E402

from fom_pipeline.restore import FaceRestorer, run_size  # noqa: E402

MODELS = {
    "gfpgan": ("GFPGAN v1.4 size", lambda: restorers.gfpgan_state()),
    "restoreformer": ("RestoreFormer size", lambda: restorers.restoreformer_state(full=True)),
    "restoreformer-small": ("the tests' small RestoreFormer", lambda: restorers.restoreformer_state()),
    "compact": ("Real-ESRGAN Compact 1x (16 features)", lambda: restorers.compact_state()),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--crops", type=int, default=4, help="crops timed per model (after one warm-up batch)")
    ap.add_argument("--size", type=int, default=256, help="animated crop size (the FOMM model's)")
    ap.add_argument("--batch", type=int, default=4, help="crops per model call")
    args = ap.parse_args()
    from spandrel import ModelLoader

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{args.size} px crops, {args.batch} per call", flush=True)
    crops = np.random.default_rng(0).random((args.crops, args.size, args.size, 3), dtype=np.float32)
    for key in args.models:
        label, state = MODELS[key]
        model = ModelLoader().load_from_state_dict(state()).eval()
        params = sum(p.numel() for p in model.model.parameters()) / 1e6
        restorer = FaceRestorer(model, device=args.device, batch_size=args.batch)
        restorer(crops[: args.batch])  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        restorer(crops)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) / len(crops) * 1000
        restorer.release()
        print(f"  {model.architecture.name:20s} {label:38s} {params:6.1f} M params, runs at "
              f"{run_size(model, args.size)} px: {ms:8.1f} ms per face and frame", flush=True)


if __name__ == "__main__":
    main()
