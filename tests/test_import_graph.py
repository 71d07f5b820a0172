"""No import circle in the engine or the nodes: every import, also those inside functions, read from
the source, and the modules that used to import each other imported alone in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from kit import REPO

PACKAGES = ("fom_pipeline", "nodes")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports (anywhere in its body). Importing a.b.c also
    runs the packages a and a.b, so they count too, unless the importer is inside them."""
    files = {_module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                anchor = here[: len(here) - node.level + 1] if node.level else []
                target = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    dep = ".".join(parts[:i])
                    if dep in files and dep != name and not name.startswith(dep + "."):
                        graph[name].add(dep)
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk meets, each as the modules along it (first == last)."""
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                circles.append([*path[path.index(dep):], dep])
            elif dep not in state:
                walk(dep, path)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [])
    return circles


def test_no_import_circle():
    graph = import_graph(REPO)
    assert {"fom_pipeline.weights", "fom_pipeline.faces.detect", "nodes.loaders"} <= set(graph)
    assert "fom_pipeline.sfd_weights" in graph["fom_pipeline.weights"]  # imports inside functions are seen
    assert import_circles(graph) == []


def test_the_check_finds_a_circle(tmp_path):
    """The old shape: weights checked a download with faces.detect, which imported weights."""
    pkg = tmp_path / "fom_pipeline"
    (pkg / "faces").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "weights.py").write_text("def check():\n    from .faces.detect import load\n")
    (pkg / "faces" / "__init__.py").write_text("from .detect import load\n")
    (pkg / "faces" / "detect.py").write_text("from .. import weights\n\ndef load():\n    pass\n")
    circles = import_circles(import_graph(tmp_path, ("fom_pipeline",)))
    assert circles and all(c[0] == c[-1] for c in circles)
    assert any({"fom_pipeline.weights", "fom_pipeline.faces.detect"} <= set(c) for c in circles), circles


@pytest.mark.parametrize("module", ["fom_pipeline.known_weights", "fom_pipeline.sfd_weights", "fom_pipeline.weights",
                                    "fom_pipeline.faces.boxes", "fom_pipeline.faces.select",
                                    "fom_pipeline.faces.detect"])
def test_module_imports_alone(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
