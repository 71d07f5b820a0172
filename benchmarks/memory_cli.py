"""Peak memory of the command line against driving-video length (streaming must keep it flat).

Runs `python -m fom_pipeline` on the first N frames of fom_dv.mp4 for each N (default 300 and all
1759) with a small generated model, and prints the peak resident memory of the Python process (from
the kernel's own accounting, wait4 ru_maxrss) and of the whole process tree (Python plus its ffmpeg
readers and encoder, sampled every 20 ms).

    python benchmarks/memory_cli.py                        # 300 vs 1759 frames, one face of the painting
    python benchmarks/memory_cli.py --frames 100 600 --faces five
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("FOM_SHARED_DIR", REPO.parent / "shared")).resolve()
PAINTING_FACES = "185,180,320,305;405,310,505,440;600,185,695,300;695,320,800,440;1085,280,1195,400"


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(args: list[str]) -> dict:
    """Run the command; return wall time, peak RSS of Python (ru_maxrss) and of the process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "fom_pipeline", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = 0
    done = threading.Event()

    def sample():
        nonlocal peak_tree
        while not done.is_set():
            peak_tree = max(peak_tree, _tree_rss(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_text: list[str] = []
    reader = threading.Thread(target=lambda: out_text.append(proc.stdout.read() + proc.stderr.read()), daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}):\n{''.join(out_text)[-2000:]}")
    return {
        "seconds": time.perf_counter() - start,
        "python_peak_mib": usage.ru_maxrss / 1024,  # Linux reports KiB
        "tree_peak_mib": peak_tree / 2**20,
        "summary": [line for line in "".join(out_text).splitlines() if line.startswith("animated")][-1],
    }


def print_flatness(rows: list, limit: float) -> None:
    """The change of peak memory from the first to the last (length, measure()) row, against ``limit``%."""
    if len(rows) < 2:
        return
    (n0, a), (n1, b) = rows[0], rows[-1]
    for key, label in (("python_peak_mib", "python"), ("tree_peak_mib", "process tree")):
        change = (b[key] - a[key]) / a[key] * 100
        print(f"{label}: {n1} vs {n0} frames: {change:+.1f}% peak memory "
              f"({'within' if abs(change) <= limit else 'OUTSIDE'} {limit:g}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 1759], help="driving frames per run")
    parser.add_argument("--faces", choices=("five", "one"), default="one", help="animate 1 of the painting's faces (default) or all 5")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--weight_path", default=None, help="checkpoint (default: a generated tiny model)")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        weights = opts.weight_path
        if weights is None:
            from fom_pipeline.testing import random_model

            weights = str(Path(tmp) / "tiny.safetensors")
            random_model(seed=0).save(weights)
        faces = PAINTING_FACES if opts.faces == "five" else PAINTING_FACES.split(";")[0]
        common = ["--source_image", str(SHARED / "media" / "fom_source_image_multi_person.jpg"),
                  "--driving_video", str(SHARED / "media" / "fom_dv.mp4"), "--weight_path", weights,
                  "--faces", faces, "--multi_person", "--relative", "--adapt_scale", "--cpu",
                  "--batch_size", str(opts.batch_size), "--output", tmp, "--overwrite", "--quiet"]
        rows = []
        for n in opts.frames:
            result = measure([*common, "--max_frames", str(n), "--filename", f"run{n}.mp4"])
            rows.append((n, result))
            print(f"{n:5d} frames: python peak {result['python_peak_mib']:7.1f} MiB, process tree peak "
                  f"{result['tree_peak_mib']:7.1f} MiB, {result['seconds']:6.1f} s  | {result['summary']}",
                  flush=True)
        print_flatness(rows, 20)


if __name__ == "__main__":
    main()
