"""The editor in headless Chromium: each saved UI workflow loads with no missing nodes, shows its
saved widget values, matches its API twin, queues from the page and finishes. Screenshots of each
loaded graph go to test-artifacts/."""

import time

import pytest
from comfy_host import ARTIFACTS
from workflow_files import WORKFLOWS, api, ui

MISSING = "() => window.app.graph.nodes.filter(n => !LiteGraph.registered_node_types[n.type]).map(n => n.type)"
DIALOGS = "() => [...document.querySelectorAll('.p-dialog, [role=dialog]')].map(d => d.innerText)"
TOASTS = "() => [...document.querySelectorAll('.p-toast-message-warn, .p-toast-message-error')].map(t => t.innerText)"
UI_ONLY = {"video-preview", "upload"}  # editor-only widgets the frontend adds to core loaders' inputs
WIDGETS = "() => window.app.graph.nodes.map(n => [String(n.id), (n.widgets || []).map(w => [w.name, w.value])])"


def _load(page, workflow: dict) -> None:
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
    page.wait_for_timeout(1000)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("name", WORKFLOWS)
def test_ui_workflow_loads_matches_api_and_queues(editor_page, comfy_env, name):
    page = editor_page
    _load(page, ui(name))
    assert page.evaluate(MISSING) == []
    assert not [d for d in page.evaluate(DIALOGS) if "missing" in d.lower()]
    assert page.evaluate(TOASTS) == []

    # Widgets show the saved values (those of the API twin, which POST /prompt takes).
    expected = api(name)
    for node_id, widgets in page.evaluate(WIDGETS):
        inputs = expected[node_id]["inputs"]
        for wname, value in widgets:
            if wname in inputs and not isinstance(inputs[wname], list):
                assert value == inputs[wname], (name, node_id, wname, value)

    # The editor's own API form of the loaded graph is the saved API file.
    prompt = page.evaluate("async () => (await window.app.graphToPrompt()).output")
    got = {k: (v["class_type"], {i: x for i, x in v["inputs"].items() if i not in UI_ONLY})
           for k, v in prompt.items()}
    assert got == {k: (v["class_type"], v["inputs"]) for k, v in expected.items()}

    page.evaluate("async () => await window.app.extensionManager.command.execute('Comfy.Canvas.FitView')")
    page.wait_for_timeout(1000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"workflow_{name}.png"))

    # Queue from the page and wait for the run to finish (found over HTTP).
    before = set(comfy_env.get_json("/history"))
    page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    deadline = time.monotonic() + 300
    new = set()
    while time.monotonic() < deadline and not new:
        new = set(comfy_env.get_json("/history")) - before
        time.sleep(0.5)
    assert new, "the page queued nothing"
    entry = comfy_env.wait(new.pop(), timeout=max(1.0, deadline - time.monotonic()))
    assert entry["status"]["status_str"] == "success", entry["status"]
