"""`batch --ray` on a real local Ray (2 CPUs, bound to 127.0.0.1) that the test starts and stops itself,
stopping only the processes it started: the same frames as the local run, and a worker killed in the
middle of a job has that job retried on another worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from batch_scene import GOOD, assert_follows, frames_of, make_scene, read_results, run_batch
from kit import REPO

# Ray's own switch for a one-machine cluster: every address is the loopback one (127.0.0.1)
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_ray():
    """`ray start --head --block` on 127.0.0.1 with 2 CPUs; stopped through its own pid (it ends the Ray
    processes it started), then any of its processes still alive, by pid. Never `ray stop`."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must stay short
    port = _free_port()
    log = open(temp / "start.log", "w")  # noqa: SIM115 (closed below)
    env = {**os.environ, **LOOPBACK, "PYTHONPATH": os.fspath(REPO)}
    proc = subprocess.Popen([os.fspath(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats",
                             "--object-store-memory=200000000"], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    started = []
    try:
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in (temp / "start.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (temp / "start.log").read_text()
            time.sleep(0.5)
        started = psutil.Process(proc.pid).children(recursive=True)
        yield {**LOOPBACK, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    finally:
        started += [p for p in _alive(proc.pid) if p not in started]
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        _, alive = psutil.wait_procs([p for p in started if p.is_running()], timeout=20)
        for p in alive:
            p.kill()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _alive(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict:
    """One scene run locally, and a copy of its inputs for Ray to run."""
    local = make_scene(tmp_path_factory.mktemp("local"))
    res = run_batch(local)
    assert res.returncode == 1 and "batch: 4 ok" in res.stdout, res.stderr
    on_ray = tmp_path_factory.mktemp("on_ray")
    for path in local["folder"].iterdir():
        if path.is_file() and not path.name.startswith("jobs.results"):
            shutil.copy(path, on_ray / path.name)
    return {"local": local, "ray": {**local, "folder": on_ray, "jobs": on_ray / "jobs.csv",
                                    "weights": on_ray / local["weights"].name}}


def _same_frames(scenes: dict) -> None:
    for number, (_, _, output) in GOOD.items():
        local, remote = frames_of(scenes["local"]["folder"] / output), frames_of(scenes["ray"]["folder"] / output)
        assert local.shape == remote.shape
        assert np.abs(local.astype(int) - remote).max() <= 1, f"job {number}"
        assert_follows(scenes["ray"], number)


def test_ray_run_gives_the_local_run_s_results_and_frames(local_ray, scenes):
    res = run_batch(scenes["ray"], "--ray", "--workers", 2, env=local_ray)
    assert res.returncode == 1, res.stderr
    assert "batch: 4 ok, 0 skipped (done before), 3 failed of 7 jobs" in res.stdout, res.stderr
    local, remote = read_results(scenes["local"]), read_results(scenes["ray"])
    for number in local:
        assert (remote[number]["status"], remote[number]["frames"]) == (local[number]["status"],
                                                                        local[number]["frames"])
        here = str(local[number]["error"]).replace(str(scenes["local"]["folder"]), str(scenes["ray"]["folder"]))
        assert str(remote[number]["error"]) == here
    assert sum("keypoints_s" in remote[n] for n in GOOD) == 2  # each driver read once, by one worker
    _same_frames(scenes)


def test_a_killed_worker_s_job_is_retried_on_another(local_ray, scenes):
    killed: list[int] = []

    def kill_first_render() -> None:
        deadline = time.monotonic() + 240
        while not killed and time.monotonic() < deadline:
            for p in psutil.process_iter(["pid", "cmdline"]):
                if any("ray::Worker.render" in part for part in p.info["cmdline"] or []):
                    os.kill(p.info["pid"], signal.SIGKILL)
                    killed.append(p.info["pid"])
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_render)
    killer.start()
    res = run_batch(scenes["ray"], "--ray", "--workers", 2, "--overwrite", env=local_ray)
    killer.join()
    assert killed, "no worker was seen rendering"
    assert res.returncode == 1 and "batch: 4 ok, 0 skipped (done before), 3 failed" in res.stdout, res.stderr
    results = read_results(scenes["ray"])
    assert sorted(results[n]["attempts"] for n in GOOD) == [1, 1, 1, 2], results
    _same_frames(scenes)
