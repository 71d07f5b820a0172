"""Fixtures for the real-host tests: one ComfyUI server per session (this repo linked into its
custom_nodes/), a generated FOMM checkpoint in its models/fom/, and headless Debian Chromium."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import assets
import pytest
from comfy_host import ARTIFACTS, ComfyServer, free_port, shared_dir

CLIP_FRAMES = 6  # driving clips are cut to this many frames so every workflow runs in seconds


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.comfyui)


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory) -> ComfyServer:
    """Start ComfyUI 0.3.75 (CPU) once for the session; its log goes to test-artifacts/."""
    base = tmp_path_factory.mktemp("comfy_base")
    # One log per test session: tests count its lines, so two sessions at once must not share it.
    name = "comfyui-server.log" if os.environ.get("CI") else f"comfyui-server-{os.getpid()}.log"
    server = ComfyServer(base_dir=base, port=free_port(), log_path=ARTIFACTS / name)
    t0 = time.monotonic()
    server.start()
    print(f"ComfyUI up on {server.url} after {time.monotonic() - t0:.1f}s (log {server.log_path})")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def comfy_env(comfy_server) -> ComfyServer:
    """The server with everything the saved workflows name: a generated FOMM checkpoint, generated
    S3FD weights, the photos and short driving clips (cut from ../shared/media) in its input/."""
    base = comfy_server.base_dir
    ckpt = base / "models" / "fom" / assets.CHECKPOINT
    if not ckpt.exists():
        assets.write_fomm_checkpoint(ckpt)
    sfd = base / "models" / "face_detection" / assets.SFD_WEIGHTS
    if not sfd.exists():
        assets.write_sfd_weights(sfd)
    media = shared_dir() / "media"
    if not media.is_dir():
        raise RuntimeError(f"shared media not found at {media}; set FOM_SHARED_DIR to the shared folder")
    inp = base / "input"
    for photo in (assets.PHOTO_MULTI, assets.PHOTO_FACE):
        if not (inp / photo).exists():
            shutil.copy(media / photo, inp / photo)
    clips = {
        assets.DRIVER_CROPPED: dict(src=assets.DRIVER_CROPPED, frames=CLIP_FRAMES, audio=True),
        assets.DRIVER_CROPPED_2: dict(src=assets.DRIVER_CROPPED, frames=CLIP_FRAMES, start_frame=300, hflip=True),
        assets.DRIVER_HEAD: dict(src=assets.DRIVER_HEAD, frames=CLIP_FRAMES - 1),
    }
    for name, spec in clips.items():
        if not (inp / name).exists():
            src = media / spec.pop("src")
            assets.make_clip(src, inp / name, **spec)
    return comfy_server


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
    for key, value in (("Comfy.TutorialCompleted", True),
                       ("Comfy.Minimap.Visible", False),  # it would cover the screenshots' lower right
                       ("LiteGraph.Canvas.MinFontSizeForLOD", 1)):  # keep widget text readable when zoomed out
        comfy_server.session.post(f"{comfy_server.url}/settings/{key}", json=value, timeout=10).raise_for_status()
    context = browser.new_context(viewport={"width": 2400, "height": 1400})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.goto(comfy_server.url + "/", wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_function("() => window.app && window.app.graph && window.app.graph.nodes !== undefined",
                           timeout=60_000)
    page.console_log = console
    yield page
    context.close()
