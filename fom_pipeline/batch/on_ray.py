"""The Ray runner: the same jobs on ``--workers`` Ray actors, each a :class:`Worker` that loads the
networks once and keeps them for every job it is given.

Why actors and not Ray Data's ``map_batches``: a job is a whole video written to a file, not rows of
a dataset; what must be shared is per driver (its keypoints) and per worker (loaded networks), and a
dead worker's job must be handed to another worker and said in the results. An actor pool with a
small dispatcher says all of that directly; Ray Data would add a dataset layer, block sizes and
its own retry rules for nothing the jobs need.

Each driving video's keypoints are computed once, by whichever worker is free, fetched here and put
in the object store once (``ray.put``): the jobs of that driver get the reference, the workers read
the object, and it lives as long as this process, whatever happens to the worker that made it. A
worker that dies (killed, out of memory, its machine gone) is replaced, and its job goes back to the
queue for another worker, up to ``--retries`` times. Inputs and outputs are paths: every worker
must see them at the same place (a shared disk or mount).
"""

from __future__ import annotations

import argparse
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .jobs import CheckedJob
from .worker import Worker

Report = Callable[[CheckedJob, dict], None]


@dataclass
class Task:
    """A job to run (``kind`` "render") or to read its driver for (``kind`` "keypoints")."""

    kind: str
    job: CheckedJob
    attempts: int = 0


def require_ray():
    """The ``ray`` module, or the one line that says how to install it (an optional extra)."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'fom-multiface[ray]' (or pip install 'ray>=2.60,<3')") from None
    return ray


def _connect(opts: argparse.Namespace):
    if not os.environ.get("RAY_ADDRESS"):  # a Ray for this run only: Ray's one-machine mode, loopback addresses
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require_ray()
    package = Path(__file__).resolve().parent.parent
    runtime_env = {"py_modules": [os.fspath(package)], "excludes": ["__pycache__"]}  # this code, on every node
    if os.environ.get("RAY_ADDRESS"):
        ray.init(runtime_env=runtime_env, logging_level="WARNING", log_to_driver=not opts.quiet)
    else:  # a local Ray for this run, gone when it ends
        ray.init(runtime_env=runtime_env, logging_level="WARNING", log_to_driver=not opts.quiet,
                 include_dashboard=False)
    return ray


class Dispatcher:
    """Hands tasks to idle actors (a driver's keypoints first, then jobs whose keypoints are there)
    and deals with what comes back."""

    def __init__(self, ray, jobs: list[CheckedJob], report: Report, opts: argparse.Namespace):
        self.ray, self.report, self.retries = ray, report, opts.retries
        self.remote = ray.remote(num_cpus=opts.worker_cpus, num_gpus=opts.worker_gpus, max_restarts=0)(Worker)
        self.actors = [self.remote.remote() for _ in range(opts.workers)]
        self.idle = list(self.actors)
        self.busy: dict = {}  # object ref -> (actor, task)
        self.reads: dict[tuple, object] = {}  # driver -> object ref of its keypoints
        self.waiting: dict[tuple, deque[CheckedJob]] = {}  # driver -> jobs waiting for its keypoints
        self.queue: deque[Task] = deque()
        self.read_timings: dict[int, dict] = {}  # job -> seconds its keypoints step took
        for job in jobs:
            if job.driver is None:
                self.queue.append(Task("render", job))
            elif job.driver in self.waiting:
                self.waiting[job.driver].append(job)
            else:
                self.waiting[job.driver] = deque()
                self.queue.appendleft(Task("keypoints", job))

    def run(self) -> None:
        while self.queue or self.busy:
            while self.idle and self.queue:
                self._start(self.idle.pop(), self.queue.popleft())
            ready, _ = self.ray.wait(list(self.busy), num_returns=1)
            actor, task = self.busy.pop(ready[0])
            try:
                value = self.ray.get(ready[0])
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.ActorUnavailableError) as err:
                self._worker_died(actor, task, err)
                continue
            self.idle.append(actor)
            self._finished(task, value)

    def _start(self, actor, task: Task) -> None:
        task.attempts += 1
        if task.kind == "keypoints":
            ref = actor.keypoints.remote(task.job.args)
        else:
            ref = actor.render.remote(task.job.args, self.reads.get(task.job.driver))
        self.busy[ref] = (actor, task)

    def _finished(self, task: Task, value) -> None:
        job = task.job
        if task.kind == "render":
            result = {**value, "attempts": task.attempts}
            for name, seconds in self.read_timings.pop(job.number, {}).items():  # its keypoints step
                result[name] = round(result.get(name, 0.0) + seconds, 3)
            self.report(job, result)
            return
        read, error, timings = value
        if error:  # this job fails; the next job of its driver tries the video again
            self.report(job, {"status": "failed", "frames": 0, "error": error, "seconds": 0.0, **timings,
                              "attempts": task.attempts})
            self._next_reader(job.driver)
            return
        self.reads[job.driver] = self.ray.put(read)  # once per driver, owned by this process
        self.read_timings[job.number] = timings
        self.queue.append(Task("render", job, task.attempts - 1))
        self.queue.extend(Task("render", other) for other in self.waiting.pop(job.driver))

    def _next_reader(self, driver: tuple) -> None:
        waiting = self.waiting.get(driver)
        if waiting:
            self.queue.appendleft(Task("keypoints", waiting.popleft()))
        else:
            self.waiting.pop(driver, None)

    def _worker_died(self, actor, task: Task, err: Exception) -> None:
        """Replace the dead worker; the task goes to the front of the queue for another worker."""
        self.actors.remove(actor)
        replacement = self.remote.remote()
        self.actors.append(replacement)
        self.idle.append(replacement)
        if task.attempts <= self.retries:
            self.queue.appendleft(task)
            return
        reason = " ".join(str(err).split())[:200]
        self.report(task.job, {"status": "failed", "frames": 0, "seconds": 0.0, "attempts": task.attempts,
                               "error": f"its worker died {task.attempts} times (raise --retries?): {reason}"})
        if task.kind == "keypoints":
            self._next_reader(task.job.driver)


def run_on_ray(jobs: list[CheckedJob], report: Report, opts: argparse.Namespace) -> None:
    """Run ``jobs`` on Ray actors, calling ``report(job, result)`` as each finishes."""
    ray = _connect(opts)
    try:
        Dispatcher(ray, jobs, report, opts).run()
    finally:
        ray.shutdown()
