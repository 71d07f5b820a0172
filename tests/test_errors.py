"""Engine errors state the problem once and word the fix per front end: the Python library's words in
``str()``, the command line's flags in the CLI, node inputs in ComfyUI (tests/comfyui/test_comfyui_advice.py)."""

from __future__ import annotations

import pytest
import torch
from kit import run_cli

from fom_pipeline.devices import resolve_device
from fom_pipeline.errors import FOMError, InputError, WeightsMissingError, already_exists
from fom_pipeline.video import check_output_path


def test_each_front_end_gets_its_own_advice():
    err = InputError("the thing is wrong", python="pass fix=True", cli="pass --fix", node="turn on fix")
    assert str(err) == "the thing is wrong (pass fix=True)"
    assert err.worded("cli") == "the thing is wrong (pass --fix)"
    assert err.worded("node") == "the thing is wrong (turn on fix)"
    assert isinstance(err, ValueError) and err.args == ("the thing is wrong",)
    plain = WeightsMissingError("x.pth is missing", cli="pass --weight_path")
    assert str(plain) == plain.worded("node") == "x.pth is missing" and isinstance(plain, FileNotFoundError)
    with pytest.raises(ValueError, match="unknown front end 'web'"):
        plain.worded("web")


def test_existing_output_is_worded_per_front_end(tmp_path):
    out = tmp_path / "result.mp4"
    out.write_bytes(b"old")
    with pytest.raises(InputError) as info:
        check_output_path(out)
    err = info.value
    assert str(err) == f"output file already exists: {out} (pass overwrite=True to replace it)"
    assert err.worded("cli") == f"output file already exists: {out} (pass --overwrite to replace it)"
    assert "--" not in err.worded("node") and err.worded("node").startswith("output file already exists")
    assert already_exists(out, "motion file").message == f"motion file already exists: {out}"
    assert check_output_path(out, overwrite=True) == out


def test_missing_device_names_each_front_ends_way_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError) as info:
        resolve_device("cuda")
    err = info.value
    assert err.message == "device 'cuda' asked for, but no CUDA GPU is available"
    assert str(err).endswith("(use device='cpu')")
    assert err.worded("cli").endswith("(use --device cpu)")
    assert err.worded("node").endswith("(pick device cpu or auto)")
    assert isinstance(err, FOMError)


def test_the_command_line_shows_its_own_words(media_dir, tmp_path):
    proc = run_cli("--source_image", media_dir / "fom_source_image.png", "--driving_video", media_dir / "fom_dv.mp4",
                   "--device", "mps", "--output", tmp_path, "--quiet")
    if torch.backends.mps.is_available():  # a Mac with Apple MPS runs it: nothing to word
        return
    assert proc.returncode == 1
    assert proc.stderr == "error: device 'mps' asked for, but Apple MPS is not available (use --device cpu)\n"
