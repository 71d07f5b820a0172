"""Fixtures for the real-host tests: one ComfyUI server per host and session (this repo linked into
its custom_nodes/), a generated FOMM checkpoint in its models/fom/, and headless Debian Chromium.

Every test that uses a server runs once per test host (ComfyUI 0.3.75 and 0.33, ids ``[0.3.75]`` and
``[0.33]``): FOM_COMFY_HOSTS="0.33" (comma-separated) picks fewer. A test that only makes sense on some
hosts says which with ``@pytest.mark.hosts("0.33")`` and why, in its docstring.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import assets
import pytest
from comfy_host import ARTIFACTS, HOSTS, ComfyServer, Host, free_port, shared_dir

CLIP_FRAMES = 6  # driving clips are cut to this many frames so every workflow runs in seconds


def selected_hosts() -> list[Host]:
    names = [n.strip() for n in os.environ.get("FOM_COMFY_HOSTS", ",".join(HOSTS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in HOSTS]
    if unknown:
        raise pytest.UsageError(f"FOM_COMFY_HOSTS names unknown hosts {unknown}; known: {', '.join(HOSTS)}")
    return [HOSTS[n] for n in names]


def pytest_configure(config):
    config.addinivalue_line("markers", "hosts(*names): run only on these ComfyUI test hosts (say why)")


def pytest_generate_tests(metafunc):
    """Parametrize ``comfy_host`` (and so every server fixture) by the selected hosts."""
    if "comfy_host" not in metafunc.fixturenames:
        return
    hosts = selected_hosts()
    marker = metafunc.definition.get_closest_marker("hosts")
    if marker is not None:
        hosts = [h for h in hosts if h.name in marker.args]
    metafunc.parametrize("comfy_host", hosts, ids=[h.name for h in hosts], indirect=True, scope="session")


@pytest.fixture(scope="session")
def comfy_host(request) -> Host:
    return request.param


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.comfyui)


def start_server(base: Path, host: Host, label: str = "server") -> ComfyServer:
    """Start ``host``'s ComfyUI (CPU) on ``base``; its log goes to test-artifacts/."""
    # One log per host and test session: tests count its lines, so two sessions must not share it.
    suffix = "" if os.environ.get("CI") else f"-{os.getpid()}"
    log = ARTIFACTS / f"comfyui-{label}-{host.name}{suffix}.log"
    server = ComfyServer(base_dir=base, port=free_port(), log_path=log, host=host)
    t0 = time.monotonic()
    server.start()
    print(f"ComfyUI {host.name} up on {server.url} after {time.monotonic() - t0:.1f}s (log {log})")
    return server


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory, comfy_host) -> ComfyServer:
    """Start the host's ComfyUI (CPU) once for the session."""
    server = start_server(tmp_path_factory.mktemp(f"comfy_base_{comfy_host.name}"), comfy_host)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def comfy_env(comfy_server) -> ComfyServer:
    """The server with everything the saved workflows name: a generated FOMM checkpoint, generated
    S3FD weights, the photos and short driving clips (cut from ../shared/media) in its input/."""
    stock_inputs(comfy_server.base_dir)
    return comfy_server


@pytest.fixture(scope="module")
def probed_env(tmp_path_factory, comfy_host) -> ComfyServer:
    """A server of its own (one module's tests) with comfy_env's inputs and the test-only extension
    loaded_models_probe.py in its custom_nodes/: GET /fom_test/loaded_models shows ComfyUI's
    ``current_loaded_models``. The shared server never carries it."""
    base = tmp_path_factory.mktemp(f"comfy_probed_{comfy_host.name}")
    probe = base / "custom_nodes" / "fom_test_probe"
    probe.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("loaded_models_probe.py"), probe / "__init__.py")
    stock_inputs(base)
    server = start_server(base, comfy_host, "probed")
    yield server
    server.stop()


def stock_inputs(base: Path) -> None:
    """What the saved workflows name, under a server's base folder: a generated FOMM checkpoint,
    generated S3FD weights and restorer, the photos and short driving clips (cut from ../shared/media)."""
    ckpt = base / "models" / "fom" / assets.CHECKPOINT
    for sub in ("models/fom", "models/face_detection", "models/upscale_models", "input"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    if not ckpt.exists():
        assets.write_fomm_checkpoint(ckpt)
    sfd = base / "models" / "face_detection" / assets.SFD_WEIGHTS
    if not sfd.exists():
        assets.write_sfd_weights(sfd)
    restore = base / "models" / "upscale_models" / assets.RESTORE_MODEL
    if not restore.exists():
        assets.write_restore_model(restore)
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
