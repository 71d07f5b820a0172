"""Number-for-number parity with the original FOMM golden vectors (../shared/golden/fomm).

Both forms of the networks are held to the goldens: the trained form (the paper's modules, which
hold the checkpoint's state dict) and the inference form built from it at load time
(networks/fused.py: BatchNorm folded into convs, four 2x2 convs for upsample+conv, channels-last).
Each test proves afterwards which form ran. PaddleGAN's goldens (with the mobile blocks) are held
to both forms at the end.
"""

from __future__ import annotations

import contextlib
import copy
import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import fom_pipeline as fp
from fom_pipeline.checkpoints import networks_from_checkpoint, read_checkpoint
from fom_pipeline.networks import blocks, fused, mobile

CASES = ["fomm-tiny-vox", "fomm-tiny-mgif"]
PADDLE_CASES = ["paddle-tiny-vox", "paddle-mobile", "paddle-tiny-512"]
MODES = ["abs", "rel", "rel_adapt"]
TOL = 1e-4
FORMS = ["inference", "trained"]
TRAINED_BLOCKS = (blocks.SameBlock2d, blocks.DownBlock2d, blocks.UpBlock2d, blocks.ResBlock2d,
                  mobile.MobileDownBlock2d, mobile.MobileUpBlock2d, mobile.MobileResBlock2d)
INFERENCE_BLOCKS = (fused.FoldedConv, fused.UpsampleConv, fused.ColumnConv, fused.Residual, fused.ChannelsLast)


@contextlib.contextmanager
def running(model: fp.FOMModel, form: str):
    """A copy of ``model`` whose public API runs ``form``; on exit, proof that only that form ran."""
    run = copy.copy(model)
    if form == "trained":
        run.inference = fused.Networks(model.generator, model.kp_detector)
    ran: set[type] = set()
    hook = nn.modules.module.register_module_forward_hook(lambda module, args, out: ran.add(type(module)))
    try:
        yield run
    finally:
        hook.remove()
    trained = {t.__name__ for t in ran if issubclass(t, TRAINED_BLOCKS)}
    inference = {t.__name__ for t in ran if issubclass(t, INFERENCE_BLOCKS)}
    if form == "trained":
        assert trained and not inference, f"the trained form ran inference blocks {sorted(inference)}"
    else:
        assert inference and not trained, f"the inference form ran trained blocks {sorted(trained)}"


@pytest.fixture(scope="module", params=CASES)
def case(request, golden_dir):
    base = golden_dir / "fomm" / request.param
    meta = json.loads(base.with_suffix(".json").read_text())
    model = fp.load_model(base.with_suffix(".pth.tar"), precision="fp32")
    model.image_size = meta["image_size"]
    return model, load_file(str(base.with_suffix(".safetensors"))), meta


@pytest.fixture(params=FORMS)
def form(request, case):
    """(model running one form, goldens, meta)."""
    model, g, meta = case
    with running(model, request.param) as run:
        yield run, g, meta


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def kp(g, name) -> fp.Keypoints:
    return fp.Keypoints(g[f"{name}.value"], g[f"{name}.jacobian"])


def test_config_inferred_from_tensors(case):
    model, _, meta = case
    assert model.config == meta["config"]


def test_keypoints_match(form):
    model, g, _ = form
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
def test_generator_outputs_match(form, mode):
    model, g, _ = form
    with torch.no_grad():
        out = model.inference.generator(g["input.source"], kp(g, f"kp_norm.{mode}").as_dict(),
                                        kp(g, "kp_source").as_dict())
    for name in ("prediction", "mask", "occlusion_map", "deformed"):
        assert (out[name] - g[f"align_true.{mode}.{name}"]).abs().max() <= TOL, name


@pytest.mark.parametrize("mode", MODES)
def test_animate_end_to_end_matches(form, mode):
    """The public API from images to frames, with batches that do not divide the clip."""
    model, g, meta = form
    opts = meta["modes"][mode]
    driving = model.extract_keypoints(nhwc(g["input.driving"]))
    frames = model.animate(nhwc(g["input.source"]), driving, relative=opts["relative"],
                           adapt_scale=opts["adapt_movement_scale"], relative_jacobian=opts["relative_jacobian"],
                           batch_size=3)
    assert frames.shape == nhwc(g[f"align_true.{mode}.prediction"]).shape
    assert (frames - nhwc(g[f"align_true.{mode}.prediction"])).abs().max() <= TOL


def test_align_corners_false_option_matches_unpatched_reference(form):
    model, g, _ = form
    generator = model.inference.generator
    generator.set_align_corners(False)
    try:
        with torch.no_grad():
            out = generator(g["input.source"], kp(g, "kp_norm.rel").as_dict(), kp(g, "kp_source").as_dict())
    finally:
        generator.set_align_corners(True)
    assert (out["prediction"] - g["align_false.rel.prediction"]).abs().max() <= TOL
    # and the default really is the training-time semantics: the two differ measurably
    assert (g["align_false.rel.prediction"] - g["align_true.rel.prediction"]).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["fomm/fomm-tiny-vox.pth.tar", "paddle/paddle-mobile.pdparams"])
def test_building_the_inference_form_leaves_the_checkpoints_state_dict_as_it_was(golden_dir, name):
    path = golden_dir / name
    generator, kp_detector = networks_from_checkpoint(read_checkpoint(path), path)
    before = {part: {k: v.clone() for k, v in net.state_dict().items()}
              for part, net in (("generator", generator), ("kp_detector", kp_detector))}
    model = fp.FOMModel(generator, kp_detector, read_checkpoint(path).config, precision="fp32")
    for part, net in (("generator", model.generator), ("kp_detector", model.kp_detector)):
        after = net.state_dict()
        assert list(after) == list(before[part])
        assert all(torch.equal(after[k], v) and after[k].dtype == v.dtype for k, v in before[part].items())
        assert not any(isinstance(m, INFERENCE_BLOCKS) for m in net.modules())
    for net in model.inference:  # and the inference form is made of folded blocks only
        assert not any(isinstance(m, TRAINED_BLOCKS) for m in net.modules())
        assert any(isinstance(m, fused.FoldedConv) for m in net.modules())


@pytest.mark.parametrize("form_name", FORMS)
@pytest.mark.parametrize("name", PADDLE_CASES)
def test_paddle_goldens_hold_in_both_forms(golden_dir, name, form_name):
    """Keypoints, the generator in PaddleGAN's inference mode, and frames end to end (mobile blocks too)."""
    base = golden_dir / "paddle" / name
    g = load_file(str(base.with_suffix(".safetensors")))
    meta = json.loads(base.with_suffix(".json").read_text())
    with running(fp.load_model(base.with_suffix(".pdparams"), precision="fp32"), form_name) as model:
        got = model.extract_keypoints(nhwc(g["input.driving"]), batch_size=2)
        assert (got.value - g["kp_driving.value"]).abs().max() <= TOL
        assert (got.jacobian - g["kp_driving.jacobian"]).abs().max() <= TOL
        for mode in meta["generator_output_modes"]:
            with torch.no_grad():
                out = model.inference.generator(g["input.source"], kp(g, f"kp_norm.{mode}").as_dict(),
                                                kp(g, "kp_source").as_dict())
            assert (out["prediction"] - g[f"{mode}.prediction"]).abs().max() <= TOL, mode
        opts = meta["modes"]["rel_adapt"]
        frames = model.animate(nhwc(g["input.source"]), got, relative=True, adapt_scale=True,
                               relative_jacobian=opts["use_relative_jacobian"], batch_size=2)
        assert (frames - nhwc(g["rel_adapt.prediction"])).abs().max() <= TOL
