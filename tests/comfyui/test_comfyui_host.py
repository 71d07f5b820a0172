"""The test host itself: ComfyUI starts with this pack linked in and answers its API."""

import pytest
from comfy_host import PACK_NAME


@pytest.mark.timeout(200)
def test_server_answers_object_info(comfy_server):
    info = comfy_server.get_json("/object_info")
    # Core video nodes the workflows rely on are present in this ComfyUI.
    for core in ("LoadVideo", "GetVideoComponents", "CreateVideo", "SaveVideo"):
        assert core in info, core
    stats = comfy_server.get_json("/system_stats")
    assert stats["system"]["comfyui_version"].startswith("0.3.75")


def test_pack_imports_without_error(comfy_server):
    log = comfy_server.log_text()
    assert f"custom_nodes/{PACK_NAME}" in log  # listed in "Import times for custom nodes"
    bad = [line for line in log.splitlines()
           if PACK_NAME in line and ("IMPORT FAILED" in line or "Cannot import" in line)]
    assert not bad, "\n".join(bad)
    assert "Error while calling comfy_entrypoint" not in log


@pytest.mark.timeout(120)
def test_editor_opens_in_chromium(editor_page):
    version = editor_page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")
    assert version and version.count(".") == 2
