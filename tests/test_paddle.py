"""PaddleGAN's released models: parity with PaddleGAN's own numbers (../shared/golden/paddle),
layouts of all three releases, the border modes, and the restricted unpickler."""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict

import pytest
import torch
from kit import CodePayload
from safetensors.torch import load_file

import fom_pipeline as fp
from fom_pipeline.checkpoints import build_networks
from fom_pipeline.config import RELEASE_CONFIGS

CASES = ["paddle-tiny-vox", "paddle-mobile", "paddle-tiny-512"]
TOL = 1e-4


def nhwc(x):
    return x.permute(0, 2, 3, 1)


@pytest.fixture(scope="module", params=CASES)
def case(request, golden_dir):
    base = golden_dir / "paddle" / request.param
    meta = json.loads(base.with_suffix(".json").read_text())
    model = fp.load_model(base.with_suffix(".pdparams"), precision="fp32")  # warp_border auto -> paddlegan
    return request.param, model, load_file(str(base.with_suffix(".safetensors"))), meta


def kp(g, name):
    return fp.Keypoints(g[f"{name}.value"], g[f"{name}.jacobian"])


def test_origin_border_mode_and_size_follow_the_file(case):
    name, model, g, meta = case
    assert model.origin == "paddlegan" and model.warp_border == "paddlegan"
    assert model.image_size == meta["image_size"]
    assert model.is_mobile == (name == "paddle-mobile")
    paddle_cfg = meta["config"]["model"]
    assert model.config["common_params"] == paddle_cfg["common_params"]
    for ours, theirs in (("kp_detector_params", "kp_detector_cfg"), ("generator_params", "generator_cfg")):
        assert model.config[ours] == paddle_cfg["generator"][theirs]


def test_keypoints_match_paddle(case):
    _, model, g, _ = case
    for name, images in (("kp_source", g["input.source"]), ("kp_driving", g["input.driving"])):
        got = model.extract_keypoints(nhwc(images), batch_size=1)
        assert (got.value - g[f"{name}.value"]).abs().max() <= TOL
        assert (got.jacobian - g[f"{name}.jacobian"]).abs().max() <= TOL


def test_normalized_keypoints_match_paddle(case):
    _, _, g, meta = case
    driving = kp(g, "kp_driving")
    for mode, opts in meta["modes"].items():
        got = fp.normalize_keypoints(kp(g, "kp_source"), driving, driving[0], opts["use_relative_movement"],
                                     opts["use_relative_jacobian"], opts["adapt_movement_scale"])
        assert (got.value - g[f"kp_norm.{mode}.value"]).abs().max() <= TOL
        assert (got.jacobian - g[f"kp_norm.{mode}.jacobian"]).abs().max() <= TOL


def test_generator_in_paddle_inference_mode_matches(case):
    _, model, g, meta = case
    for mode in meta["generator_output_modes"]:
        with torch.no_grad():
            out = model.generator(g["input.source"], kp(g, f"kp_norm.{mode}").as_dict(), kp(g, "kp_source").as_dict())
        for name in ("prediction", "mask", "occlusion_map", "deformed"):
            if f"{mode}.{name}" in g:
                assert (out[name] - g[f"{mode}.{name}"]).abs().max() <= TOL, (mode, name)


def test_animate_end_to_end_matches_paddle(case):
    _, model, g, meta = case
    opts = meta["modes"]["rel_adapt"]
    frames = model.animate(nhwc(g["input.source"]), model.extract_keypoints(nhwc(g["input.driving"])),
                           relative=True, adapt_scale=True, relative_jacobian=opts["use_relative_jacobian"])
    assert (frames - nhwc(g["rel_adapt.prediction"])).abs().max() <= TOL


def test_plain_border_mode_matches_paddle_without_inference(golden_dir):
    base = golden_dir / "paddle" / "paddle-tiny-vox"
    g = load_file(str(base.with_suffix(".safetensors")))
    plain = fp.load_model(base.with_suffix(".pdparams"), precision="fp32", warp_border="plain")
    with torch.no_grad():
        out = plain.generator(g["input.source"], kp(g, "kp_norm.rel_adapt").as_dict(), kp(g, "kp_source").as_dict())
    assert (out["prediction"] - g["noinfer.rel_adapt.prediction"]).abs().max() <= TOL
    # the two modes are a real difference, not noise
    assert (g["noinfer.rel_adapt.prediction"] - g["rel_adapt.prediction"]).abs().max() > 0.05


def test_conversion_remembers_paddle_origin(golden_dir, tmp_path):
    src = golden_dir / "paddle" / "paddle-mobile.pdparams"
    out = fp.convert(src, tmp_path / "mobile.safetensors")
    a, b = fp.load_model(src), fp.load_model(out)
    assert b.origin == "paddlegan" and b.warp_border == "paddlegan" and b.is_mobile
    g = load_file(str(golden_dir / "paddle" / "paddle-mobile.safetensors"))
    src_img, drv = nhwc(g["input.source"]), nhwc(g["input.driving"])
    assert torch.equal(a.animate(src_img, a.extract_keypoints(drv)), b.animate(src_img, b.extract_keypoints(drv)))


def _paddle_write(path, generator, kp_detector):
    """Write a .pdparams the way paddle.save does (the shared helper in fom_pipeline.testing)."""
    from fom_pipeline.testing import write_pdparams

    write_pdparams(path, generator, kp_detector)


@pytest.mark.parametrize(("layout", "release"), [("vox-256", "vox-256"), ("vox-512", "vox-256"),
                                                 ("vox-mobile-256", "vox-mobile-256")])
def test_every_full_size_paddle_layout_loads_with_the_right_config(golden_dir, tmp_path, layout, release):
    spec = json.loads((golden_dir / "paddle" / "paddle-state-dict-layout.json").read_text())["models"][layout]
    generator, kp_detector = build_networks(RELEASE_CONFIGS[release])
    torch.manual_seed(0)
    with torch.no_grad():
        for p in list(generator.parameters()) + list(kp_detector.parameters()):
            p.normal_(0, 0.01)
    path = tmp_path / f"{layout}.pdparams"
    _paddle_write(path, generator.state_dict(), kp_detector.state_dict())
    with open(path, "rb") as f:
        written = pickle.load(f)
    for part in ("generator", "kp_detector"):  # we wrote exactly the layout PaddleGAN's code has
        expected = spec[part].items() if isinstance(spec[part], dict) else spec[part]
        assert [(k, list(v[1].shape)) for k, v in written[part].items()] == [(k, list(v)) for k, v in expected]
    model = fp.load_model(path, precision="fp32")
    assert model.config == RELEASE_CONFIGS[release]
    assert model.image_size == (512 if "512" in layout else 256)
    assert torch.equal(model.generator.final.bias if not model.is_mobile else model.generator.final[4].bias,
                       (generator.final if not model.is_mobile else generator.final[4]).bias)


def test_pdparams_asking_for_any_other_global_is_refused(tmp_path):
    marker = tmp_path / "ran"

    path = tmp_path / "vox-cpk.pdparams"
    path.write_bytes(pickle.dumps({"generator": OrderedDict(x=("w", CodePayload(marker, call="open"))), "kp_detector": {}}, protocol=4))
    with pytest.raises(fp.CheckpointError, match=r"refusing to load: the pickle asks for '(builtins|io)\.open'"):
        fp.load_model(path)
    assert not marker.exists()
