"""Jobs per minute for many jobs sharing few drivers: a for-loop of single commands against `batch`
locally against `batch --ray --workers 2`, and where the time goes in each (model loading, driving
keypoints, rendering).

20 jobs (default) animate the seed's photo (one face, boxes by hand) with 2 drivers (fom_dv.mp4 and
lp_driving_d0.mp4, the first --frames frames each), with a full-size generated vox-256 model on the
CPU. The for-loop is what users write: one `python -m fom_pipeline` per job, each starting Python,
loading the model and reading its driver again. Its split comes from one job run in-process with
the same timers the batch uses (the rest of its wall time is process start and imports).

    python benchmarks/batch_throughput.py                  # 20 jobs, 2 drivers, 24 frames each
    python benchmarks/batch_throughput.py --jobs 40 --frames 48 --skip loop
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("FOM_SHARED_DIR", REPO.parent / "shared")).resolve()
FACE = "48,40,208,216"  # the seed photo's face
DRIVERS = ("fom_dv.mp4", "lp_driving_d0.mp4")
STAGES = ("load_s", "keypoints_s", "render_s")
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def _job_flags(weights: Path, frames: int) -> list[str]:
    return ["--weight_path", str(weights), "--faces", FACE, "--relative", "--max_frames", str(frames), "--cpu"]


def _setup(folder: Path, jobs: int, frames: int) -> tuple[Path, Path]:
    from fom_pipeline.testing import full_config, random_model

    weights = folder / "vox-256-random.safetensors"
    random_model(full_config("vox-256")).save(weights)
    table = folder / "jobs.csv"
    with open(table, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["source_image", "driving_video", "output"])
        for n in range(jobs):
            out.writerow([SHARED / "media" / "fom_source_image.png", SHARED / "media" / DRIVERS[n % len(DRIVERS)],
                          f"out/job{n + 1:03d}.mp4"])
    return weights, table


def _rows(table: Path) -> list[dict]:
    with open(table, newline="") as f:
        return list(csv.DictReader(f))


def for_loop(folder: Path, weights: Path, table: Path, frames: int) -> dict:
    started = time.perf_counter()
    for row in _rows(table):
        out = folder / "loop" / row["output"]
        res = subprocess.run([sys.executable, "-m", "fom_pipeline", "--source_image", row["source_image"],
                              "--driving_video", row["driving_video"], "--output", str(out.parent), "--filename",
                              out.name, "--quiet", *_job_flags(weights, frames)], cwd=REPO, capture_output=True,
                             text=True)
        if res.returncode:
            raise SystemExit(f"single command failed: {res.stderr}")
    wall = time.perf_counter() - started
    split = _one_job_split(folder, weights, _rows(table)[0], frames)
    jobs = len(_rows(table))
    stages = {name: split.get(name, 0.0) * jobs for name in STAGES}
    stages["start+imports_s"] = max(0.0, wall - sum(stages.values()))
    return {"wall": wall, "jobs": jobs, "stages": stages}


def _one_job_split(folder: Path, weights: Path, row: dict, frames: int) -> dict:
    """One job in this process with a fresh worker: what a single command spends on each stage."""
    from fom_pipeline.batch.worker import Worker
    from fom_pipeline.cli import parse_args

    args = parse_args(["--source_image", row["source_image"], "--driving_video", row["driving_video"], "--output",
                       str(folder / "split"), "--quiet", "--overwrite", *_job_flags(weights, frames)])
    result = Worker(quiet=True).render(args)
    if result["status"] != "ok":
        raise SystemExit(f"in-process job failed: {result['error']}")
    return result


def batch(folder: Path, weights: Path, table: Path, frames: int, *extra: str, env: dict | None = None) -> dict:
    results = folder / f"results{'-'.join(extra)}.jsonl"
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "fom_pipeline", "batch", str(table), "--results", str(results),
                          "--overwrite", "--quiet", *_job_flags(weights, frames), *extra], cwd=REPO,
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    if res.returncode:
        raise SystemExit(f"batch {' '.join(extra)} failed: {res.stdout}{res.stderr}")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    stages = {name: sum(row.get(name, 0.0) for row in rows) for name in STAGES}
    stages["other_s"] = max(0.0, wall - sum(stages.values())) if not extra else None
    return {"wall": wall, "jobs": len(rows), "stages": stages}


def _line(name: str, run: dict) -> str:
    per_min = run["jobs"] / run["wall"] * 60
    parts = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in run["stages"].items() if v is not None)
    return f"{name:<24} {run['wall']:7.1f} s  {per_min:6.1f} jobs/min   ({parts})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--frames", type=int, default=24, help="driving frames per job")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=("loop", "batch", "ray"))
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fom-batch-bench-") as tmp:
        folder = Path(tmp)
        weights, table = _setup(folder, opts.jobs, opts.frames)
        print(f"{opts.jobs} jobs, {len(DRIVERS)} drivers, {opts.frames} frames each, vox-256 (random weights) on "
              f"the CPU, {os.cpu_count()} cores")
        print("(ray: load/keypoints/render are worker-seconds summed over workers; its wall time includes "
              "starting Ray)")
        runs = {}
        if "loop" not in opts.skip:
            runs["for-loop"] = for_loop(folder, weights, table, opts.frames)
            print(_line("for-loop", runs["for-loop"]), flush=True)
        if "batch" not in opts.skip:
            runs["batch"] = batch(folder, weights, table, opts.frames)
            print(_line("batch", runs["batch"]), flush=True)
        if "ray" not in opts.skip:
            name = f"batch --ray --workers {opts.workers}"
            runs[name] = batch(folder, weights, table, opts.frames, "--ray", "--workers", str(opts.workers),
                               env=LOOPBACK)
            print(_line(name, runs[name]), flush=True)
        if "for-loop" in runs and "batch" in runs:
            print(f"batch is {runs['for-loop']['wall'] / runs['batch']['wall']:.1f}x the for-loop's throughput")


if __name__ == "__main__":
    main()
