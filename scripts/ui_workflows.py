"""Write the editor (UI) form of each shipped workflow from its API twin, using the real editor.

    ~/.cache/fomtest/venv/bin/python scripts/ui_workflows.py [--shots] [NAME ...]

For every ``workflows/api/NAME.json`` it starts the ComfyUI test host (``bash scripts/test.sh``
builds it) with this pack, opens the editor in headless Chromium, creates the API twin's nodes
with their ids, titles and widget values, links them in the API's order, places them by the
LAYOUT below (columns of nodes inside the groups Inputs, Faces, Motion, Output, each node at
least its editor-computed size), and saves the editor's own ``app.graph.serialize()`` as
``workflows/NAME.json``. So socket types, link entries and widget lists are exactly what the
frontend writes. tests/comfyui/test_comfyui_editor.py checks the result (graphToPrompt equals
the API twin, layout, readability) and saves screenshots.

Edit an API twin or the LAYOUT, run this, run the editor test, look at test-artifacts/. ``--shots``
also saves test-artifacts/layout_NAME.png (the graph fit to view; empty stand-in media) to tune
the LAYOUT without running the test.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "comfyui"), str(REPO / "tests")]  # comfy_host uses the test kit

from comfy_host import ComfyServer, free_port  # noqa: E402

# Per workflow: group title -> columns -> node ids, each id alone or [id, y] with y the lowest top
# of its title bar (px below the group's top): lets a link run straight through a gap, e.g. the
# photo's row above the loaders and the driving video's row below them. Groups are laid out left to
# right in this order; a column's nodes are stacked top to bottom, GAP apart at least.
GROUPS = ["Inputs", "Faces", "Motion", "Output"]
COLORS = {"Inputs": "#3f789e", "Faces": "#8A8", "Motion": "#b58b2a", "Output": "#a1309b"}
PREVIEW_H = {"LoadImage": 380, "LoadVideo": 420, "PreviewImage": 300, "SaveVideo": 420}
LAYOUT = {
    "multi_face_animation": {  # top row: photo -> faces -> transfer -> paste; below: video -> keypoints
        "Inputs": [[1, [2, 540]], [[5, 160], 4]],
        "Faces": [[6], [[12, 200]]],
        "Motion": [[[7, 520]], [8, [13, 520], 14]],
        "Output": [[9, 11]],
    },
    "single_face": {  # top row: portrait -> transfer -> video; below: driving video -> crop -> keypoints
        "Inputs": [[1, [2, 510]], [[4, 200]]],
        "Faces": [[[5, 510]]],
        "Motion": [[[6, 490]], [7]],
        "Output": [[8, 9]],
    },
    "faces_by_hand_two_drivers": {  # videos' rows pass above and below the photo
        "Inputs": [[6, [8, 550]], [[1, 160], [2, 630]]],
        "Faces": [[[3, 160]], [[4, 160], 5, [18, 640]]],
        "Motion": [[10, [11, 530]], [[12, 140], [13, 430]]],
        "Output": [[[14, 140], [15, 430], 17]],
    },
    "face_restoration": {  # top row: photo -> boxes -> transfer -> paste; below: video -> keypoints; restorer
        "Inputs": [[1, [6, 550]], [[2, 160]]],  # under the transfer, beside the paste it feeds
        "Faces": [[[3, 160], [18, 640]]],
        "Motion": [[[10, 550]], [[12, 140], [16, 470]]],
        "Output": [[[14, 140], 17]],
    },
    "faces_in_a_video": {  # top row: source video -> faces -> transfer -> paste; below: driving video -> keypoints
        "Inputs": [[1, [2, 600]], [[5, 160], 4]],
        "Faces": [[6], [[12, 200]]],
        "Motion": [[[7, 600]], [8]],
        "Output": [[9, 11]],
    },
}
COLUMN_W = 320  # node width (wider if the editor needs more)
GAP = 40  # between nodes in a column and between columns
PAD = 20  # group border to its nodes
GROUP_TITLE = 60  # room for the group's title above its first node
TITLE_H = 30  # LiteGraph's node title bar, drawn above pos

# Runs in the page: builds the graph from the API prompt, places it, returns graph.serialize() as JSON.
BUILD = """async ([prompt, layout]) => {
  const app = window.app, graph = app.graph;
  graph.clear();
  for (const [id, spec] of Object.entries(prompt)) {
    const node = LiteGraph.createNode(spec.class_type);
    if (!node) throw new Error('unknown node ' + spec.class_type);
    node.id = +id;
    if (spec._meta?.title) node.title = spec._meta.title;
    graph.add(node);
  }
  for (const [id, spec] of Object.entries(prompt)) {
    const node = graph.getNodeById(+id);
    for (const [name, value] of Object.entries(spec.inputs)) {
      if (Array.isArray(value)) {
        const slot = node.inputs.findIndex(i => i.name === name);
        if (slot < 0) throw new Error(`${spec.class_type} has no input ${name}`);
        graph.getNodeById(+value[0]).connect(value[1], node, slot);
      } else {
        const w = node.widgets?.find(w => w.name === name);
        if (!w) throw new Error(`${spec.class_type} has no widget ${name}`);
        w.value = value;
      }
    }
  }
  await new Promise(r => setTimeout(r, 500));
  for (const [id, [x, y, w, h]] of Object.entries(layout.nodes)) {
    const node = graph.getNodeById(+id);
    const min = node.computeSize();
    node.pos = [x, y];
    node.size = [Math.max(w, min[0]), Math.max(h, min[1])];
  }
  for (const [title, bounding] of layout.groups) {
    const group = new LiteGraph.LGraphGroup(title);
    group.color = layout.colors[title];
    group.font_size = 24;
    graph.add(group);
    group.pos = [bounding[0], bounding[1]];
    group.size = [bounding[2], bounding[3]];
  }
  return JSON.stringify(graph.serialize());  // as the editor saves it: undefined fields dropped
}"""
MIN_SIZES = """(ids) => Object.fromEntries(ids.map(([id, type]) => {
  const n = LiteGraph.createNode(type); return [id, n.computeSize()];
}))"""


def place(name: str, prompt: dict, min_sizes: dict) -> dict:
    """Node rectangles (pos is below the title bar, as LiteGraph stores it) and group boundings."""
    nodes, groups, x = {}, [], 0
    for title in GROUPS:
        columns = LAYOUT[name][title]
        gx, bottom = x, 0
        x += PAD
        for column in columns:
            column = [c if isinstance(c, list) else [c, 0] for c in column]
            width = max(max(min_sizes[str(i)][0], COLUMN_W) for i, _ in column)
            y = GROUP_TITLE
            for node_id, top in column:
                y = max(y, top)
                h = max(min_sizes[str(node_id)][1], PREVIEW_H.get(prompt[str(node_id)]["class_type"], 0))
                nodes[str(node_id)] = [x, y + TITLE_H, width, h]
                y += TITLE_H + h + GAP
            bottom = max(bottom, y - GAP)
            x += width + GAP
        x += PAD - GAP
        groups.append([title, [gx, 0, x - gx, bottom + PAD]])
        x += GAP
    height = max(g[1][3] for g in groups)
    for g in groups:  # every group as tall as the tallest: the four read as one row of columns
        g[1][3] = height
    count = sum(len(col) for cols in LAYOUT[name].values() for col in cols)
    assert set(nodes) == set(prompt) and count == len(prompt), (name, set(nodes) ^ set(prompt), count)
    return {"nodes": nodes, "groups": groups, "colors": COLORS}


def tidy(graph: dict) -> dict:
    """Stable file contents: a fixed workflow id and view, no frontend version stamp."""
    assert set(graph.get("extra", {})) <= {"ds", "frontendVersion"}, graph["extra"]  # nothing else dropped
    graph["id"] = "00000000-0000-0000-0000-000000000000"
    graph["revision"] = 0
    graph["extra"] = {"ds": {"scale": 0.6, "offset": [60, 60]}}
    for node in graph["nodes"]:
        node["pos"] = [round(v) for v in node["pos"]]
        node["size"] = [round(v) for v in node["size"]]
    return graph


def main(names: list[str], shots: bool = False) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        # Empty stand-ins so the loaders' lists hold the names the workflows use.
        prompts = {n: json.loads((REPO / "workflows" / "api" / f"{n}.json").read_text()) for n in names}
        for prompt in prompts.values():
            for spec in prompt.values():
                for key, sub in (("image", "input"), ("file", "input"), ("ckpt_name", "models/fom"),
                                 ("model_name", "models/upscale_models")):
                    value = spec["inputs"].get(key)
                    if isinstance(value, str):
                        (base / sub).mkdir(parents=True, exist_ok=True)
                        (base / sub / value).touch()
        server = ComfyServer(base_dir=base, port=free_port(), log_path=base / "comfyui.log")
        server.start()
        try:
            for key, value in (("Comfy.TutorialCompleted", True), ("Comfy.Minimap.Visible", False)):
                server.session.post(f"{server.url}/settings/{key}", json=value, timeout=10).raise_for_status()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=os.environ.get("FOM_CHROMIUM", "/usr/bin/chromium"),
                                            headless=True, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 2400, "height": 1400})
                page.goto(server.url + "/", wait_until="domcontentloaded", timeout=60_000)
                page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph", timeout=60_000)
                page.wait_for_timeout(2000)
                for name, prompt in prompts.items():
                    min_sizes = page.evaluate(MIN_SIZES, [[k, v["class_type"]] for k, v in prompt.items()])
                    layout = place(name, prompt, min_sizes)
                    graph = tidy(json.loads(page.evaluate(BUILD, [prompt, layout])))
                    out = REPO / "workflows" / f"{name}.json"
                    out.write_text(json.dumps(graph, indent=1) + "\n")
                    print(f"wrote {out.relative_to(REPO)}: {len(graph['nodes'])} nodes, {len(graph['links'])} links")
                    if shots:
                        page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", graph)
                        page.evaluate("() => window.app.extensionManager.command.execute('Comfy.Canvas.FitView')")
                        page.wait_for_timeout(1000)
                        (REPO / "test-artifacts").mkdir(exist_ok=True)
                        page.screenshot(path=str(REPO / "test-artifacts" / f"layout_{name}.png"))
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    args = sys.argv[1:]
    main([a for a in args if a != "--shots"] or list(LAYOUT), shots="--shots" in args)
