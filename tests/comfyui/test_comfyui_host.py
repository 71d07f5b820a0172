"""The test hosts themselves: each ComfyUI starts with this pack linked in, answers its API, is the
version it claims to be and serves its own frontend."""

import re

import pytest
from comfy_host import PACK_NAME


def _required_frontend(server) -> str:
    """The comfyui-frontend-package version the host's own requirements.txt pins."""
    text = (server.host.dir / "requirements.txt").read_text()
    return re.search(r"^comfyui-frontend-package==(\S+)", text, re.M).group(1)


@pytest.mark.timeout(200)
def test_server_answers_object_info(comfy_server):
    info = comfy_server.get_json("/object_info")
    # Core video nodes the workflows rely on are present in this ComfyUI.
    for core in ("LoadVideo", "GetVideoComponents", "CreateVideo", "SaveVideo"):
        assert core in info, core
    stats = comfy_server.get_json("/system_stats")
    assert stats["system"]["comfyui_version"] == comfy_server.host.version
    # what tells the two apart for a video pack: 0.33 trims any VIDEO and nests Save Video's options
    assert ("Video Slice" in info) == comfy_server.host.newer
    codec_input = info["SaveVideo"]["input"]["required"].get("codec")
    assert (codec_input is None) == comfy_server.host.newer, info["SaveVideo"]["input"]


def test_pack_imports_without_error(comfy_server):
    log = comfy_server.log_text()
    assert f"custom_nodes/{PACK_NAME}" in log  # listed in "Import times for custom nodes"
    bad = [line for line in log.splitlines()
           if PACK_NAME in line and ("IMPORT FAILED" in line or "Cannot import" in line)]
    assert not bad, "\n".join(bad)
    assert "Error while calling comfy_entrypoint" not in log


@pytest.mark.timeout(120)
def test_editor_opens_in_chromium(editor_page, comfy_server):
    """Each host serves the frontend its own requirements pin (1.32.9 for 0.3.75, 1.49.6 for 0.33):
    the 0.33 frontend lives in a folder only that server has on its PYTHONPATH."""
    version = editor_page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")
    assert version == _required_frontend(comfy_server)
