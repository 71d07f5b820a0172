"""What a hostile or careless input costs before it is refused: peak memory and time to the refusal.

Each case runs in a child Python (the kernel's own peak, wait4 ru_maxrss; wall time) against the
code in ``--code`` (default: this checkout), so the same script measures another checkout for a
before/after comparison (``--code /path/to/older/checkout``). A child may use at most ``--limit_gib``
of address space, so a case that would take the machine's memory fails there instead.

Each row: the child's peak memory, its whole run (Python and torch start-up included) and, where
timed, the call alone from its start to its result or refusal.

- ``config W``: a small generated .safetensors whose stored config claims generator layers W wide
  (block_expansion = max_features = W), loaded with ``load_model``;
- ``config text``: a stored config that is not JSON;
- ``indices``: the face numbers ``1-20000000`` checked against 3 faces (FOMSelectFaces' text);
- ``motion fps``: a motion file claiming 1e9 frames per second, loaded;
- ``box``: the command line with a 3000 px face box on the 1200x900 painting (4 driving frames).

    python benchmarks/hostile_inputs.py                         # this checkout
    python benchmarks/hostile_inputs.py --code /work/main       # another one (before)
    python benchmarks/hostile_inputs.py --widths 6000 20000 --cases config
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("FOM_SHARED_DIR", REPO.parent / "shared")).resolve()
CASES = ("config", "config_text", "indices", "motion_fps", "box")

# Each call is timed on its own too (after the imports): from its start to its result or refusal.
TIMED = """
import time
<IMPORTS>
start = time.perf_counter()
try:
    <CALL>
finally:
    print(f"CALL_SECONDS {time.perf_counter() - start:.3f}", flush=True)
"""
FIND_PARSER = """
try:
    from fom_pipeline.faces import parse_face_numbers as parse
except ImportError:  # before the parser moved into the engine: the node helper, loaded without ComfyUI
    import importlib.util
    spec = importlib.util.spec_from_file_location("node_common", "nodes/common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parse = module.parse_indices
"""


def _timed(imports: str, call: str) -> list[str]:
    """A child Python's arguments: ``imports``, then ``call`` timed."""
    return ["-c", TIMED.replace("<IMPORTS>", imports).replace("<CALL>", call)]


def _load_model(path: Path) -> list[str]:
    return _timed("from fom_pipeline.model import load_model", f"load_model({str(path)!r}, precision='fp32')")


def _limit(gib: float):
    def apply():
        size = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    return apply


def measure(argv: list[str], code: Path, limit_gib: float) -> dict:
    """Run ``argv`` (a Python child) in ``code``; wall time, peak RSS and the last line it printed."""
    env = {**os.environ, "PYTHONPATH": str(code), "FOM_ALLOW_DOWNLOAD": "0"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], cwd=code, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=_limit(limit_gib))
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    lines = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith("CALL_SECONDS")]
    timed = [float(ln.split()[1]) for ln in output.splitlines() if ln.startswith("CALL_SECONDS")]
    return {"seconds": time.perf_counter() - start, "peak_mib": usage.ru_maxrss / 1024,
            "call": timed[0] if timed else None, "exit": os.waitstatus_to_exitcode(status),
            "last": lines[-1][:200] if lines else ""}


def _checkpoint_with_config(folder: Path, name: str, config_text: str) -> Path:
    """A small generated checkpoint whose metadata says ``config_text`` (weights unchanged)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    base = folder / "tiny.safetensors"
    if not base.exists():
        from fom_pipeline.testing import random_model

        random_model(seed=0).save(base)
    with safe_open(str(base), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"] = config_text
    out = folder / name
    save_file(tensors, str(out), metadata=meta)
    return out


def _wide_config(width: int) -> str:
    from fom_pipeline.testing import tiny_config

    config = tiny_config()
    config["generator_params"].update(block_expansion=width, max_features=width)
    return json.dumps(config)


def _motion_file(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    path = folder / "fast.safetensors"
    tensors = {"value": torch.zeros(4, 10, 2), "jacobian": torch.eye(2).expand(4, 10, 2, 2).contiguous()}
    save_file(tensors, str(path), metadata={"format": "fom_motion", "version": "1", "fps": "1e9", "name": "x",
                                            "frames": "4", "keypoints": "10"})
    return path


def _box_run(folder: Path) -> list[str]:
    weights = folder / "tiny.safetensors"
    if not weights.exists():
        from fom_pipeline.testing import random_model

        random_model(seed=0).save(weights)
    return ["-m", "fom_pipeline", "--source_image", str(SHARED / "media" / "fom_source_image_multi_person.jpg"),
            "--driving_video", str(SHARED / "media" / "fom_dv.mp4"), "--weight_path", str(weights),
            "--faces", "0,0,3000,3000", "--max_frames", "4", "--cpu", "--output", str(folder / "out"),
            "--filename", "box.mp4", "--overwrite", "--quiet"]


def _show(label: str, result: dict) -> None:
    call = f"{result['call']:6.2f} s" if result["call"] is not None else "    --  "
    print(f"{label:<22} peak {result['peak_mib']:8.1f} MiB  process {result['seconds']:6.1f} s  call {call}  "
          f"exit {result['exit']:3d}  | {result['last']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose fom_pipeline runs (default: this one)")
    parser.add_argument("--widths", type=int, nargs="+", default=[6000, 20000], help="claimed layer widths")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--limit_gib", type=float, default=16.0, help="address-space limit of each child")
    opts = parser.parse_args()
    code = opts.code.resolve()
    print(f"code: {code}  (children limited to {opts.limit_gib:g} GiB of address space)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "config" in opts.cases:
            for width in opts.widths:
                path = _checkpoint_with_config(folder, f"wide{width}.safetensors", _wide_config(width))
                _show(f"config width {width}", measure(_load_model(path), code, opts.limit_gib))
        if "config_text" in opts.cases:
            path = _checkpoint_with_config(folder, "text.safetensors", "{not json")
            _show("config not JSON", measure(_load_model(path), code, opts.limit_gib))
        if "indices" in opts.cases:
            _show("indices 1-20000000", measure(_timed(FIND_PARSER, "parse('1-20000000', 3)"), code, opts.limit_gib))
        if "motion_fps" in opts.cases:
            path = _motion_file(folder)
            load = _timed("from fom_pipeline.motion_file import load_motion", f"load_motion({str(path)!r})")
            _show("motion fps 1e9", measure(load, code, opts.limit_gib))
        if "box" in opts.cases:
            _show("box 3000px on 1200x900", measure(_box_run(folder), code, opts.limit_gib))


if __name__ == "__main__":
    main()
