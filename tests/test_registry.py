"""Registry and Manager readiness: what `comfy node validate` checks, dependencies, node_list.json.

`comfy node validate` (comfy-cli) reads pyproject.toml (a version is required) and runs
`ruff check . --select S102,S307,E702` over the pack (exec, eval, several statements on one line).
ComfyUI-Manager and comfy-cli install `[project] dependencies`; ComfyUI-Manager maps node ids to this
V3 pack through node_list.json (and, in newer scanners, `io.Schema(node_id=...)` in ComfyNode classes).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from kit import REPO

COMFY_CLI_RUFF_RULES = "S102,S307,E702"  # comfy_cli/command/custom_nodes/command.py: validate_node_for_publishing


def _load_node_list_script():
    spec = importlib.util.spec_from_file_location("node_list_script", REPO / "scripts" / "node_list.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_pyproject_dependencies_are_requirements_txt_without_torch(pyproject):
    deps = [d.strip() for d in pyproject["project"]["dependencies"]]
    assert deps == _requirements()
    assert deps, "the pack needs numpy, opencv-python, ..."
    for listed in (deps, _requirements()):
        names = {_name(d) for d in listed}
        assert not names & {"torch", "torchvision", "torchaudio"}, "ComfyUI provides torch; never list it"


def test_pyproject_fields_the_registry_reads(pyproject):
    project = pyproject["project"]
    assert project["version"].strip() and project["name"].strip() and project["description"].strip()
    comfy = pyproject["tool"]["comfy"]
    assert comfy["PublisherId"].strip() and comfy["DisplayName"].strip()
    # No invented links: a URL field is a real https address or is left out.
    for key, url in project.get("urls", {}).items():
        assert url.startswith("https://") and "fom-multiface/fom-multiface" not in url, (key, url)


def _ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUFF_NO_CACHE": "true"}
    return subprocess.run([sys.executable, "-m", "ruff", "check", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_comfy_node_validate_security_rules_are_clean():
    res = _ruff(".", "-q", "--no-cache", "--select", COMFY_CLI_RUFF_RULES, "--output-format", "concise", cwd=REPO)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_the_same_rules_catch_exec_eval_and_two_statements(tmp_path):
    # The check above can fail: the same ruff and rules flag each thing comfy-cli warns about.
    (tmp_path / "bad.py").write_text('exec("x = 1")\ny = eval("1 + 1")\na = 1; b = 2\n')
    res = _ruff(".", "-q", "--no-cache", "--isolated", "--select", COMFY_CLI_RUFF_RULES, "--output-format", "concise",
                cwd=tmp_path)
    assert res.returncode == 1
    assert {"S102", "S307", "E702"} <= set(re.findall(r"\b(S102|S307|E702)\b", res.stdout)), res.stdout


def _manager_scan(repo: Path) -> set[str]:
    """Node ids ComfyUI-Manager's scanner would attribute to this pack from its .py sources: V1
    NODE_CLASS_MAPPINGS keys and V3 ComfyNode classes with io.Schema(node_id="...")."""
    script = _load_node_list_script()
    ids: set[str] = set()
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for file in files:
            if not file.endswith(".py"):
                continue
            path = Path(root) / file
            ids |= {node_id for node_id, _ in script.schema_nodes(path).values()}
            text = path.read_text(encoding="utf-8", errors="ignore")
            mapped = re.findall(r"^\s*NODE_CLASS_MAPPINGS\s*(?::[^=]*)?=\s*\{([^}]*)\}", text, re.M)
            for body in mapped:
                ids |= set(re.findall(r"[\"']([^\"']+)[\"']\s*:", body))
    return ids


def test_node_list_json_lists_exactly_the_registered_nodes():
    listed = json.loads((REPO / "node_list.json").read_text(encoding="utf-8"))
    assert isinstance(listed, dict) and all(isinstance(v, str) and v for v in listed.values())
    script = _load_node_list_script()
    registered = script.registered_nodes(REPO)
    assert set(listed) == set(registered), "regenerate it: python scripts/node_list.py"
    assert script.main(["--check"]) == 0, "regenerate it: python scripts/node_list.py"
    # What a source scan of the whole repo finds is the same set: no test or benchmark file would
    # make Manager map a foreign node id to this pack, and every registered node is findable.
    assert _manager_scan(REPO) == set(listed)
    # Every node class in nodes/ is registered (a class left out of NODES would never load).
    classes = {cls for path in (REPO / "nodes").glob("*.py") for cls in script.schema_nodes(path)}
    assert classes == set(script.registered_classes(REPO / "nodes"))


def test_node_list_check_fails_when_a_node_is_missing(tmp_path, monkeypatch):
    script = _load_node_list_script()
    stale = dict(script.registered_nodes(REPO))
    stale.pop(next(iter(stale)))
    path = tmp_path / "node_list.json"
    path.write_text(script.render(stale), encoding="utf-8")
    monkeypatch.setattr(script, "NODE_LIST", path)
    assert script.main(["--check"]) == 1
    assert script.main([]) == 0 and json.loads(path.read_text()) == script.registered_nodes(REPO)
