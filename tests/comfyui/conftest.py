"""Fixtures for the real-host tests: one ComfyUI server per session (this repo linked into its
custom_nodes/), a generated FOMM checkpoint in its models/fom/, and headless Debian Chromium."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from comfy_host import ARTIFACTS, ComfyServer, free_port

CHECKPOINT_NAME = "fom_test_tiny.safetensors"


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.comfyui)


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory) -> ComfyServer:
    """Start ComfyUI 0.3.75 (CPU) once for the session; its log goes to test-artifacts/."""
    base = tmp_path_factory.mktemp("comfy_base")
    server = ComfyServer(base_dir=base, port=free_port(), log_path=ARTIFACTS / "comfyui-server.log")
    t0 = time.monotonic()
    server.start()
    print(f"ComfyUI up on {server.url} after {time.monotonic() - t0:.1f}s (log {server.log_path})")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fom_checkpoint(comfy_server) -> str:
    """A small random FOMM checkpoint in <base>/models/fom/; returns the name the loader lists."""
    from fom_pipeline.testing import random_model

    path = comfy_server.base_dir / "models" / "fom" / CHECKPOINT_NAME
    if not path.exists():
        random_model(seed=0, image_size=256).save(path)
    return CHECKPOINT_NAME


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("FOM_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def editor_page(browser, comfy_server):
    """A fresh page with the ComfyUI editor loaded and its first-run tour marked done."""
    comfy_server.session.post(comfy_server.url + "/settings/Comfy.TutorialCompleted", json=True,
                              timeout=10).raise_for_status()
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.goto(comfy_server.url + "/", wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_function("() => window.app && window.app.graph && window.app.graph.nodes !== undefined",
                           timeout=60_000)
    page.console_log = console
    yield page
    context.close()
