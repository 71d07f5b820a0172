"""Number-for-number parity with the original FOMM golden vectors (../shared/golden/fomm).

Both network paths are held to the goldens: the fused inference path (BatchNorm folded into convs,
channels-last, the default) and the plain unfused ops (``plain_ops``, the reference loop of
benchmarks/speed.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import fom_pipeline as fp
from fom_pipeline.networks import fused

CASES = ["fomm-tiny-vox", "fomm-tiny-mgif"]
MODES = ["abs", "rel", "rel_adapt"]
TOL = 1e-4
PATHS = ["fused", "plain"]


@pytest.fixture(scope="module", params=CASES)
def case(request, golden_dir):
    base = golden_dir / "fomm" / request.param
    meta = json.loads(base.with_suffix(".json").read_text())
    model = fp.load_model(base.with_suffix(".pth.tar"))
    model.image_size = meta["image_size"]
    return model, load_file(str(base.with_suffix(".safetensors"))), meta


@pytest.fixture(params=PATHS)
def ops(request, monkeypatch):
    """Run the test on one network path, and prove afterwards that it was that path."""
    calls = []
    real = fused._cached

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(fused, "_cached", counting)  # every fused op fetches its folded weights here
    if request.param == "plain":
        with fused.plain_ops():
            yield request.param
        assert not calls, f"plain path used fused ops: {sorted(set(calls))}"
    else:
        yield request.param
        assert calls, "the fused path was never taken"


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def kp(g, name) -> fp.Keypoints:
    return fp.Keypoints(g[f"{name}.value"], g[f"{name}.jacobian"])


def test_config_inferred_from_tensors(case):
    model, _, meta = case
    assert model.config == meta["config"]


def test_keypoints_match(ops, case):
    model, g, _ = case
    for name, images in (("kp_source", g["input.source"]), ("kp_driving", g["input.driving"])):
        got = model.extract_keypoints(nhwc(images), batch_size=3)
        assert (got.value - g[f"{name}.value"]).abs().max() <= TOL
        assert (got.jacobian - g[f"{name}.jacobian"]).abs().max() <= TOL


@pytest.mark.parametrize("mode", MODES)
def test_normalized_keypoints_match(case, mode):
    _, g, meta = case
    opts = meta["modes"][mode]
    driving = kp(g, "kp_driving")
    got = fp.normalize_keypoints(kp(g, "kp_source"), driving, driving[0], opts["relative"],
                                 opts["relative_jacobian"], opts["adapt_movement_scale"])
    assert (got.value - g[f"kp_norm.{mode}.value"]).abs().max() <= TOL
    assert (got.jacobian - g[f"kp_norm.{mode}.jacobian"]).abs().max() <= TOL


@pytest.mark.parametrize("mode", MODES)
def test_generator_outputs_match(ops, case, mode):
    model, g, _ = case
    with torch.no_grad():
        out = model.generator(g["input.source"], kp(g, f"kp_norm.{mode}").as_dict(), kp(g, "kp_source").as_dict())
    for name in ("prediction", "mask", "occlusion_map", "deformed"):
        assert (out[name] - g[f"align_true.{mode}.{name}"]).abs().max() <= TOL, name


@pytest.mark.parametrize("mode", MODES)
def test_animate_end_to_end_matches(ops, case, mode):
    """The public API from images to frames, with batches that do not divide the clip."""
    model, g, meta = case
    opts = meta["modes"][mode]
    driving = model.extract_keypoints(nhwc(g["input.driving"]))
    frames = model.animate(nhwc(g["input.source"]), driving, relative=opts["relative"],
                           adapt_scale=opts["adapt_movement_scale"], relative_jacobian=opts["relative_jacobian"],
                           batch_size=3)
    assert frames.shape == nhwc(g[f"align_true.{mode}.prediction"]).shape
    assert (frames - nhwc(g[f"align_true.{mode}.prediction"])).abs().max() <= TOL


def test_align_corners_false_option_matches_unpatched_reference(ops, case):
    model, g, _ = case
    model.generator.set_align_corners(False)
    try:
        with torch.no_grad():
            out = model.generator(g["input.source"], kp(g, "kp_norm.rel").as_dict(), kp(g, "kp_source").as_dict())
    finally:
        model.generator.set_align_corners(True)
    assert (out["prediction"] - g["align_false.rel.prediction"]).abs().max() <= TOL
    # and the default really is the training-time semantics: the two differ measurably
    assert (g["align_false.rel.prediction"] - g["align_true.rel.prediction"]).abs().max() > 1e-3
