"""One worker of a batch: loads each network once and runs job after job with it.

The local runner uses one in its own process; on Ray each actor is one (``ray.remote(Worker)``).
A job's own failure (a missing photo, a broken video) comes back as its result, in the single
command's words; only the death of the worker itself is left to the caller.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from ..cli import run as single
from ..cli.job import Job
from ..cli.main import one_line
from ..errors import FOMError


class JobBars(single.Bars):
    """The single command's bars, drawn under the batch's own bar and cleared when done."""

    def bar(self, desc: str, total: int | None, unit: str = "frame"):
        from tqdm import tqdm

        return tqdm(total=total or None, desc=f"  {desc}", unit=unit, disable=self.quiet, file=sys.stderr,
                    dynamic_ncols=True, leave=False)

    def note(self, message: str) -> None:
        if not self.quiet:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)


def error_line(err: BaseException) -> str:
    """One line for a failed job, as the single command prints it after ``error:``."""
    if isinstance(err, FOMError):
        return one_line(err)
    if isinstance(err, MemoryError):
        return "out of memory; lower --batch_size or use a shorter clip"
    if isinstance(err, OSError):
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        return f"{err.strerror or one_line(err)}{where}"
    if isinstance(err, RuntimeError) and "out of memory" in str(err).lower():
        return "out of GPU memory; lower --batch_size or use --precision fp16"
    return f"{type(err).__name__}: {one_line(err)}"


JOB_ERRORS = (FOMError, OSError, MemoryError, RuntimeError, ValueError)


class Worker:
    """Networks loaded once per setting (model, detector, restorer), then any number of jobs.

    ``keypoints(args)`` reads a job's driving video into keypoints (to share with the other jobs of
    that driver); ``render(args, read)`` does a job. Both return plain data (picklable for Ray) and
    the seconds spent loading, on keypoints and rendering.
    """

    def __init__(self, quiet: bool = True):
        self.quiet = quiet
        self.networks: dict[tuple, object] = {}

    def pid(self) -> int:
        return os.getpid()

    def _cached(self, key: tuple, load: Callable[[], object], timings: dict) -> object:
        if key not in self.networks:
            started = time.perf_counter()
            self.networks[key] = load()
            timings["load_s"] = timings.get("load_s", 0.0) + time.perf_counter() - started
        return self.networks[key]

    def _loaded(self, job: Job, timings: dict):
        args = job.args
        model = self._cached(("model", args.weight_path, args.image_size, args.mobile_net, args.precision,
                              args.warp_border, job.device), lambda: single.load_job_model(job), timings)
        needs_detector = job.boxes is None or args.crop_driving
        detector = self._cached(("detector", args.face_detector, job.device), lambda: single.load_detector(job),
                                timings) if needs_detector else None
        restorer = self._cached(("restorer", args.restore_model, job.device), lambda: single.load_restorer(job),
                                timings) if args.restore_model else None
        return model, detector, restorer

    def keypoints(self, args: argparse.Namespace) -> tuple[object | None, str | None, dict]:
        """(the driving video's keypoints, None, timings), or (None, the job's one-line error, timings)."""
        timings: dict = {}
        try:
            job = Job.from_args(args)
            model, detector, _ = self._loaded(job, timings)
            started = time.perf_counter()
            read = single.video_keypoints(job, model, detector, JobBars(self.quiet))
            timings["keypoints_s"] = time.perf_counter() - started
            return read, None, timings
        except JOB_ERRORS as err:
            return None, error_line(err), timings

    def render(self, args: argparse.Namespace, read=None) -> dict:
        """Do one job (``read``: its driving keypoints, already computed); its result as a dict."""
        started = time.perf_counter()
        timings: dict = {}
        try:
            job = Job.from_args(args)
            model, detector, restorer = self._loaded(job, timings)
            if job.driving is not None and read is None:
                read, error, more = self.keypoints(args)
                timings.update(more)
                if error:
                    return _failed(error, started, timings)
            rendering = time.perf_counter()
            summary = single.render(job, model, detector, restorer, JobBars(self.quiet), rendering, read)
            timings["render_s"] = time.perf_counter() - rendering
            return {"status": "ok", "frames": summary.frames, "faces": summary.faces, "error": None,
                    "seconds": round(time.perf_counter() - started, 3), **_rounded(timings)}
        except JOB_ERRORS as err:
            return _failed(error_line(err), started, timings)


def _failed(error: str, started: float, timings: dict) -> dict:
    return {"status": "failed", "frames": 0, "error": error, "seconds": round(time.perf_counter() - started, 3),
            **_rounded(timings)}


def _rounded(timings: dict) -> dict:
    return {name: round(value, 3) for name, value in timings.items()}
