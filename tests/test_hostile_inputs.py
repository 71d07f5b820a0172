"""Hostile or careless inputs to the command line: each is one line on stderr, refused before any
large allocation or network run (the process's peak memory stays near an idle start's), and nothing
is left in the output folder.

The real-host twins of these cases are in tests/comfyui/test_comfyui_hostile.py; the numbers behind
the limits come from benchmarks/hostile_inputs.py.
"""

from __future__ import annotations

import json
import os

import pytest
from kit import MEDIA, PAINTING, run_cli_measured
from safetensors import safe_open
from safetensors.torch import save_file

# An idle `python -m fom_pipeline` that loads torch and refuses at once peaks near 700 MiB; the
# refusals below must stay near that (before: a claimed width of 6000 peaked at 10.4 GiB).
REFUSAL_PEAK_MIB = 1100


def _with_config(source, target, config_text: str):
    """``source`` (our .safetensors) with its stored config replaced by ``config_text``."""
    with safe_open(str(source), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"] = config_text
    save_file(tensors, str(target), metadata=meta)
    return target


def _wide(tiny_checkpoint, folder, width: int):
    with safe_open(str(tiny_checkpoint), framework="pt") as f:
        config = json.loads(f.metadata()["config"])
    config["generator_params"].update(block_expansion=width, max_features=width)
    return _with_config(tiny_checkpoint, folder / f"wide{width}.safetensors", json.dumps(config))


def _one_line(proc, expected: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def _render(weights, out, *extra):
    return ["--source_image", MEDIA / "fom_source_image.png", "--driving_video", MEDIA / "fom_dv.mp4",
            "--weight_path", weights, "--faces", "48,40,208,216", "--max_frames", "4", "--cpu", "--output", out,
            "--quiet", *extra]


@pytest.mark.parametrize("width", [6000, 100000])
def test_a_config_claiming_huge_layers_is_refused_before_anything_is_built(tiny_checkpoint, tmp_path, width):
    weights = _wide(tiny_checkpoint, tmp_path, width)
    proc, peak = run_cli_measured(*_render(weights, tmp_path / "out"))
    expected = ("generator weights do not fit the network its stored config describes: wrong shape: "
                "first.conv.weight (8, 3, 7, 7) != (6000, 3, 7, 7)") if width == 6000 else \
        "the stored model config is invalid (generator_params.block_expansion 100000 is out of range (1 to 8192))"
    _one_line(proc, f"{weights}: {expected}")
    assert peak < REFUSAL_PEAK_MIB, f"peak {peak:.0f} MiB"
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "the model config stored in the file is not JSON (Expecting property name"),
    ("[1, 2]", "the model config stored in the file is list, not an object of model settings"),
    ('{"common_params": {"num_kp": "ten"}, "kp_detector_params": {}, "generator_params": {}}',
     "the stored model config is invalid (common_params.num_kp is 'ten'; expected a whole number)"),
])
def test_a_stored_config_that_is_not_an_object_of_settings_is_one_line(tiny_checkpoint, tmp_path, text, expected):
    weights = _with_config(tiny_checkpoint, tmp_path / "odd.safetensors", text)
    proc, _ = run_cli_measured(*_render(weights, tmp_path / "out"))
    line = _one_line(proc, f"{weights}: {expected}")
    assert "convert the original checkpoint again" in line
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_convert_refuses_a_huge_or_broken_config_and_writes_nothing(tiny_checkpoint, tmp_path):
    for name, weights in (("wide", _wide(tiny_checkpoint, tmp_path, 6000)),
                          ("text", _with_config(tiny_checkpoint, tmp_path / "text.safetensors", '"just text"'))):
        out = tmp_path / "converted" / f"{name}.safetensors"
        proc, peak = run_cli_measured("convert", weights, out)
        _one_line(proc, str(weights))
        assert peak < REFUSAL_PEAK_MIB, f"{name}: peak {peak:.0f} MiB"
        assert not out.parent.exists() or not os.listdir(out.parent), os.listdir(out.parent)


@pytest.mark.parametrize(("meta", "tensors", "expected"), [
    ({"fps": "1e9"}, {}, "is damaged (its frame rate must be above 0 and at most 240 frames per second, got 1e9)"),
    ({"fps": "1e300"}, {}, "is damaged (its frame rate must be above 0 and at most 240 frames per second, got 1e300)"),
    ({}, {"value": 1e30}, "is damaged (keypoints as large as 1e+30; a model's lie within 2)"),
])
def test_a_motion_file_out_of_range_is_refused_before_the_model_loads(tiny_checkpoint, tmp_path, meta, tensors,
                                                                       expected):
    import torch

    value = torch.full((4, 10, 2), tensors.get("value", 0.1))
    path = tmp_path / "motion.safetensors"
    save_file({"value": value, "jacobian": torch.eye(2).expand(4, 10, 2, 2).contiguous()}, str(path),
              metadata={"format": "fom_motion", "version": "1", "fps": "25.0", "name": "x", **meta})
    args = _render(tiny_checkpoint, tmp_path / "out")
    at = args.index("--driving_video")
    args[at:at + 2] = ["--driving_motion", path]
    proc, peak = run_cli_measured(*args)
    _one_line(proc, f"error: motion file {path} {expected}")
    assert peak < REFUSAL_PEAK_MIB, f"peak {peak:.0f} MiB"
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_face_box_far_larger_than_the_photo_is_cut_to_it(tiny_checkpoint, tmp_path):
    """A 3000 px box on the 1200x900 painting: before, the 6000 px crop window peaked at 1.2 GB here (4 GB in
    ComfyUI); cut to the picture, the run is an ordinary one."""
    out = tmp_path / "out"
    proc, peak = run_cli_measured("--source_image", PAINTING, "--driving_video", MEDIA / "fom_dv.mp4",
                                  "--weight_path", tiny_checkpoint, "--faces", "0,0,3000,3000", "--max_frames", "4",
                                  "--cpu", "--output", out, "--filename", "box.mp4", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "batch_size" not in proc.stderr and proc.stderr.strip() == ""
    assert os.listdir(out) == ["box.mp4"]
    assert peak < 1000, f"peak {peak:.0f} MiB"
