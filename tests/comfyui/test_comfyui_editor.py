"""The editor in headless Chromium: each saved UI workflow loads with no missing nodes, shows its
saved widget values, matches its API twin, queues from the page and finishes. Screenshots of each
loaded graph go to test-artifacts/."""

import time

import pytest
from comfy_host import ARTIFACTS
from workflow_files import FAST_INPUTS, WORKFLOWS, api, ui

MISSING = "() => window.app.graph.nodes.filter(n => !LiteGraph.registered_node_types[n.type]).map(n => n.type)"
DIALOGS = "() => [...document.querySelectorAll('.p-dialog, [role=dialog]')].map(d => d.innerText)"
TOASTS = "() => [...document.querySelectorAll('.p-toast-message-warn, .p-toast-message-error')].map(t => t.innerText)"
UI_ONLY = {"video-preview", "upload"}  # editor-only widgets the frontend adds to core loaders' inputs
WIDGETS = "() => window.app.graph.nodes.map(n => [String(n.id), (n.widgets || []).map(w => [w.name, w.value])])"
# Each node's and group's rectangle [x, y, w, h] in graph units as the editor lays them out (a node's
# includes its title bar), read after loading so sizes the frontend enforces count.
RECTS = """() => ({
  nodes: window.app.graph.nodes.map(n => [String(n.id), [...n.boundingRect]]),
  groups: window.app.graph.groups.map(g => [g.title, [...g.boundingRect]]),
})"""
FIT_SCALE = """async () => {
  await window.app.extensionManager.command.execute('Comfy.Canvas.FitView');
  return window.app.canvas.ds.scale;
}"""
SET_WIDGETS = """([type, values]) => window.app.graph.nodes.filter(n => n.type === type).forEach(n =>
  n.widgets.forEach(w => { if (w.name in values) w.value = values[w.name]; }))"""
MIN_READABLE_SCALE = 0.6  # below about 0.5 LiteGraph stops drawing widget text


def _overlap(a: list, b: list, gap: float = 0.0) -> bool:
    return a[0] < b[0] + b[2] + gap and b[0] < a[0] + a[2] + gap and a[1] < b[1] + b[3] + gap and b[1] < a[1] + a[3] + gap


def _inside(inner: list, outer: list) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1] and inner[0] + inner[2] <= outer[0] + outer[2]
            and inner[1] + inner[3] <= outer[1] + outer[3])


def _check_layout(name: str, rects: dict) -> None:
    """No two nodes touch (20 px apart at least), each sits in exactly one group, groups apart."""
    nodes = rects["nodes"]
    for i, (id_a, a) in enumerate(nodes):
        for id_b, b in nodes[i + 1:]:
            assert not _overlap(a, b, gap=19), (name, "nodes overlap", id_a, a, id_b, b)
    groups = rects["groups"]
    assert [t for t, _ in groups] == ["Inputs", "Faces", "Motion", "Output"], (name, groups)
    for i, (ta, a) in enumerate(groups):
        for tb, b in groups[i + 1:]:
            assert not _overlap(a, b), (name, "groups overlap", ta, tb)
    for node_id, rect in nodes:
        homes = [t for t, g in groups if _inside(rect, g)]
        assert len(homes) == 1, (name, node_id, rect, homes)


def _as_host_writes(host, node: dict) -> dict:
    """A saved API node's inputs as this host's editor writes them: ComfyUI 0.33 nests Save Video's
    codec under its format ("format.codec") and still writes the old flat "codec" (a hidden input
    that keeps saved API workflows running); 0.3.75 writes the saved file as it is."""
    inputs = dict(node["inputs"])
    if host.newer and node["class_type"] == "SaveVideo":
        inputs["format.codec"] = inputs["codec"]
    return inputs


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
    assert got == {k: (v["class_type"], _as_host_writes(comfy_env.host, v)) for k, v in expected.items()}

    # Laid out by hand: nothing overlaps; zoomed to fit, text stays readable (checked, then pictured).
    _check_layout(name, page.evaluate(RECTS))
    scale = page.evaluate(FIT_SCALE)
    assert scale >= MIN_READABLE_SCALE, (name, scale)
    page.wait_for_timeout(1000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"workflow_{name}.png"))

    # Queue from the page (with the run tests' speed-ups set in its widgets) and wait for the run to
    # finish (found over HTTP).
    for class_type, inputs in FAST_INPUTS.get(name, {}).items():
        page.evaluate(SET_WIDGETS, [class_type, inputs])
    if name in FAST_INPUTS:
        fast_prompt = page.evaluate("async () => (await window.app.graphToPrompt()).output")
        for node in fast_prompt.values():
            for wname, value in FAST_INPUTS[name].get(node["class_type"], {}).items():
                assert node["inputs"][wname] == value, (name, wname)
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
