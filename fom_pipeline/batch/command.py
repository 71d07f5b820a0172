"""``fom-animate batch JOBS [flags]``: its flags, the results file, the progress bar and the summary."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from ..cli.args import OneLineParser, non_negative_int, positive_int
from ..cli.main import on_sigterm, one_line, setup_logging
from ..errors import FOMError
from .jobs import CheckedJob, check_jobs, defaults_from_flags, read_rows


def build_batch_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="fom-animate batch", allow_abbrev=False,
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=30, width=120),
        description="Run many animation jobs: one row each of JOBS (CSV with a header row, or JSON Lines). "
        "Columns are the animate flags without dashes (source_image, driving_video or driving_motion, "
        "output = the result's file, ratio, faces, relative, smooth, mask, ...); relative paths are from "
        "the jobs file's folder. Any animate flag given here is every job's default; a cell overrides it.",
    )
    p.add_argument("jobs", help="the jobs file (.csv, or .jsonl: one JSON object a line)")
    p.add_argument("--results", default=None, metavar="FILE",
                   help="where the results go, one JSON line per job (default: JOBS.results.jsonl beside it)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo every job; without it a job whose output exists is skipped (kept as it is)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (failures and summary only)")
    ray = p.add_argument_group("Ray (pip install 'fom-multiface[ray]')")
    ray.add_argument("--ray", action="store_true",
                     help="run the jobs on the Ray cluster RAY_ADDRESS names, else on a local Ray started for "
                          "the run; inputs and outputs must be paths every worker can read and write")
    ray.add_argument("--workers", type=positive_int, default=2, help="Ray workers, each loading the model "
                     "once (default: 2)")
    ray.add_argument("--worker_cpus", type=float, default=1.0, help="CPUs each worker reserves (default: 1)")
    ray.add_argument("--worker_gpus", type=float, default=0.0,
                     help="GPUs each worker reserves (default: 0; 1 on a GPU cluster, 0.5 to share one)")
    ray.add_argument("--retries", type=non_negative_int, default=2,
                     help="times a job is retried on another worker when its worker dies (default: 2)")
    return p


def results_path(jobs: Path, given: str | None) -> Path:
    return Path(given) if given else jobs.with_name(f"{jobs.stem}.results.jsonl")


class Results:
    """The results file, a JSON line per job written as each finishes, and the counts for the summary."""

    def __init__(self, path: Path, total: int, quiet: bool):
        from tqdm import tqdm

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self.counts = {"ok": 0, "skipped": 0, "failed": 0}
        self.bar = tqdm(total=total, desc="jobs", unit="job", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def add(self, job: CheckedJob, result: dict) -> None:
        line = {"job": job.number, "status": result["status"],
                "output": os.fspath(job.output) if job.output else None, "frames": result.get("frames", 0),
                "seconds": result.get("seconds", 0.0), "error": result.get("error")}
        line.update({k: v for k, v in result.items() if k not in line})
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()
        self.counts[line["status"]] += 1
        if line["status"] == "failed":
            self.bar.write(f"job {job.number} (line {job.row.line}) failed: {line['error']}", file=sys.stderr)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        self.file.close()


def run_batch(opts: argparse.Namespace, animate_flags: list[str]) -> int:
    started = time.perf_counter()
    jobs_path = Path(opts.jobs).expanduser()
    defaults = defaults_from_flags(animate_flags)
    rows = read_rows(jobs_path)
    if opts.ray:  # before the results file is begun: a missing extra leaves the last run's results as they were
        from .on_ray import require_ray

        require_ray()
    checked = check_jobs(rows, defaults, jobs_path.resolve().parent, opts.overwrite)
    results = Results(results_path(jobs_path, opts.results), len(checked), opts.quiet)
    try:
        for job in checked:
            if job.error:
                results.add(job, {"status": "failed", "error": job.error})
            elif job.done:
                results.add(job, {"status": "skipped", "error": None})
        runnable = [job for job in checked if job.args is not None and not job.done]
        if runnable and opts.ray:
            from .on_ray import run_on_ray

            run_on_ray(runnable, results.add, opts)
        elif runnable:
            from .local import run_local

            run_local(runnable, results.add, quiet=opts.quiet)
    finally:
        results.close()
    seconds = time.perf_counter() - started
    done = results.counts["ok"]
    rate = f", {done / seconds * 60:.1f} jobs/min" if done else ""
    print(f"batch: {done} ok, {results.counts['skipped']} skipped (done before), {results.counts['failed']} failed "
          f"of {len(checked)} jobs in {seconds:.1f} s{rate}; results: {results.path}", flush=True)
    return 1 if results.counts["failed"] else 0


def main(argv: list[str]) -> int:
    """``batch`` entry: 0 when every job is done, 1 when any failed, 2 for a bad jobs file or flags,
    130 when interrupted (finished jobs stay, the running one leaves nothing)."""
    opts, animate_flags = build_batch_parser().parse_known_args(argv)
    setup_logging(opts.quiet)
    try:
        signal.signal(signal.SIGTERM, on_sigterm)  # a polite kill stops as Ctrl-C does
    except ValueError:  # not the main thread
        pass
    try:
        return run_batch(opts, animate_flags)
    except KeyboardInterrupt:
        print("\ninterrupted: finished jobs are kept and skipped when run again; the running job left nothing",
              file=sys.stderr, flush=True)
        return 130
    except FOMError as err:
        print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
        return 2
