"""ComfyUI-Manager's view of the pack: node_list.json names exactly the nodes the real host registers
from this pack, so "install missing nodes" maps every one of our node ids here (and nothing else)."""

import json

from comfy_host import PACK_NAME, REPO


def test_node_list_json_is_what_the_host_registers(comfy_env):
    info = comfy_env.get_json("/object_info")
    ours = {name for name, node in info.items() if node.get("python_module") == f"custom_nodes.{PACK_NAME}"}
    assert "FOMLoadModel" in ours, "the pack's nodes were not found by module; did it load?"
    listed = set(json.loads((REPO / "node_list.json").read_text(encoding="utf-8")))
    assert listed == ours, f"regenerate node_list.json: python scripts/node_list.py (host: {sorted(ours)})"
