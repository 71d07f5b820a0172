"""The local runner: one process, one :class:`Worker` (networks loaded once), each driving video's
keypoints computed once and kept until the last job that uses them is done."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .jobs import CheckedJob
from .worker import Worker

Report = Callable[[CheckedJob, dict], None]


def run_local(jobs: list[CheckedJob], report: Report, quiet: bool = False) -> None:
    """Run ``jobs`` in order, calling ``report(job, result)`` after each."""
    worker = Worker(quiet=quiet)
    reads: dict[tuple, object] = {}
    left = Counter(job.driver for job in jobs if job.driver is not None)
    for job in jobs:
        extra: dict = {}
        if job.driver is not None and job.driver not in reads:
            read, error, extra = worker.keypoints(job.args)
            if error:  # this job fails; the next job of the same driver tries the video again
                report(job, {"status": "failed", "frames": 0, "error": error, "seconds": 0.0, **extra})
                _done_with(job, left, reads)
                continue
            reads[job.driver] = read
        result = worker.render(job.args, reads.get(job.driver))
        for name, value in extra.items():  # the keypoints step counts toward the job that ran it
            result[name] = round(result.get(name, 0.0) + value, 3)
        result["seconds"] = round(result["seconds"] + sum(extra.values()), 3)
        report(job, result)
        _done_with(job, left, reads)


def _done_with(job: CheckedJob, left: Counter, reads: dict) -> None:
    """Drop a driver's keypoints once no job needs them (memory stays flat in the number of drivers)."""
    if job.driver is None:
        return
    left[job.driver] -= 1
    if left[job.driver] <= 0:
        reads.pop(job.driver, None)
