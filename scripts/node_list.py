"""Write (or check) node_list.json: the node ids this pack registers, for ComfyUI-Manager.

The pack registers its nodes only through ``comfy_entrypoint`` (V3, no NODE_CLASS_MAPPINGS).
ComfyUI-Manager maps a workflow's missing node ids to packs with a scanner that reads each pack's
sources: older scanners only know NODE_CLASS_MAPPINGS; newer ones also find V3 classes (a base
named ``ComfyNode`` and ``io.Schema(node_id="...")`` in ``define_schema``). Both also read a
``node_list.json`` at the pack root, ``{"NodeId": "description", ...}``, so that file lists every id.

The ids come from the sources the same way the newer scanner reads them (no ComfyUI import), and
only classes listed in ``NODES`` in nodes/__init__.py count as registered.

    python scripts/node_list.py            # rewrite node_list.json
    python scripts/node_list.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NODE_LIST = REPO / "node_list.json"


def _is_comfy_node(cls: ast.ClassDef) -> bool:
    return any((isinstance(b, ast.Name) and b.id == "ComfyNode") or
               (isinstance(b, ast.Attribute) and b.attr == "ComfyNode") for b in cls.bases)


def _schema_call(cls: ast.ClassDef) -> ast.Call | None:
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "define_schema":
            for node in ast.walk(item):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                    if name == "Schema":
                        return node
    return None


def _keyword(call: ast.Call, name: str) -> str | None:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    return None


def schema_nodes(path: Path) -> dict[str, tuple[str, str]]:
    """{class name: (node_id, display name)} of the V3 node classes defined in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and _is_comfy_node(node):
            call = _schema_call(node)
            node_id = _keyword(call, "node_id") if call is not None else None
            if node_id:
                out[node.name] = (node_id, _keyword(call, "display_name") or node_id)
    return out


def registered_classes(nodes_dir: Path) -> list[str]:
    """Class names in the ``NODES`` list of nodes/__init__.py (what comfy_entrypoint hands ComfyUI)."""
    tree = ast.parse((nodes_dir / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "NODES" and isinstance(node.value, ast.List):
            return [elt.id for elt in node.value.elts if isinstance(elt, ast.Name)]
    raise SystemExit(f"no NODES = [...] list in {nodes_dir / '__init__.py'}")


def registered_nodes(repo: Path = REPO) -> dict[str, str]:
    """{node_id: display name} of every node the pack registers, in NODES order."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted((repo / "nodes").glob("*.py")):
        found.update(schema_nodes(path))
    out = {}
    for name in registered_classes(repo / "nodes"):
        if name not in found:
            raise SystemExit(f"{name} is in NODES but no ComfyNode class with io.Schema(node_id='...') defines it")
        node_id, display = found[name]
        out[node_id] = display
    return out


def render(nodes: dict[str, str]) -> str:
    return json.dumps(dict(sorted(nodes.items())), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that node_list.json is up to date")
    args = parser.parse_args(argv)
    text = render(registered_nodes())
    if args.check:
        current = NODE_LIST.read_text(encoding="utf-8") if NODE_LIST.exists() else ""
        if current != text:
            print(f"{NODE_LIST.name} is out of date; run: python scripts/node_list.py", file=sys.stderr)
            return 1
        return 0
    NODE_LIST.write_text(text, encoding="utf-8")
    print(f"wrote {NODE_LIST.name}: {len(json.loads(text))} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
