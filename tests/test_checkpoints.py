"""Checkpoint formats, layouts of the released models, conversion and every loading error."""

from __future__ import annotations

import json
import pickle
import shutil
from collections import OrderedDict

import pytest
import torch
from kit import CodePayload

import fom_pipeline as fp
from fom_pipeline.checkpoints import build_networks, read_checkpoint
from fom_pipeline.config import RELEASE_CONFIGS, infer_config


def _layout(golden_dir):
    return json.loads((golden_dir / "fomm" / "fomm-state-dict-layout.json").read_text())


@pytest.mark.parametrize("name", ["vox-256", "mgif-256"])
def test_full_size_networks_have_the_release_keys_and_shapes(golden_dir, name):
    layout = _layout(golden_dir)[name]
    generator, kp_detector = build_networks(RELEASE_CONFIGS[name])
    for net, expected in ((generator, layout["generator"]), (kp_detector, layout["kp_detector"])):
        got = {k: list(v.shape) for k, v in net.state_dict().items()}
        assert got == {k: list(v) for k, v in expected.items()}


@pytest.mark.parametrize("name", ["vox-256", "mgif-256"])
def test_release_config_is_inferred_from_the_layout_alone(golden_dir, name):
    layout = _layout(golden_dir)[name]
    tensors = {part: {k: torch.empty(v) for k, v in layout[part].items()} for part in ("generator", "kp_detector")}
    assert infer_config(tensors["generator"], tensors["kp_detector"]) == RELEASE_CONFIGS[name]


def _outputs(model, golden_dir):
    from safetensors.torch import load_file

    g = load_file(str(golden_dir / "fomm" / "fomm-tiny-vox.safetensors"))
    src, drv = g["input.source"].permute(0, 2, 3, 1), g["input.driving"].permute(0, 2, 3, 1)
    return model.animate(src, model.extract_keypoints(drv), batch_size=2)


def test_pth_tar_to_safetensors_round_trip_gives_identical_frames(golden_dir, tmp_path):
    src = golden_dir / "fomm" / "fomm-tiny-vox.pth.tar"
    out = fp.convert(src, tmp_path / "tiny.safetensors")
    a, b = fp.load_model(src), fp.load_model(out)
    assert b.config == a.config and b.origin == "fomm"
    assert torch.equal(_outputs(a, golden_dir), _outputs(b, golden_dir))


def test_zip_serialization_and_dataparallel_prefix_load(golden_dir, tmp_path):
    legacy = torch.load(golden_dir / "fomm" / "fomm-tiny-vox.pth.tar", map_location="cpu", weights_only=True)
    legacy["generator"] = {f"module.{k}": v for k, v in legacy["generator"].items()}
    path = tmp_path / "zip-format.pth.tar"
    torch.save(legacy, path)  # current torch writes the zip format
    model = fp.load_model(path)
    ref = fp.load_model(golden_dir / "fomm" / "fomm-tiny-vox.pth.tar")
    assert torch.equal(_outputs(model, golden_dir), _outputs(ref, golden_dir))


def test_malicious_pdparams_is_refused_without_running_its_payload(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps({"generator": OrderedDict(a=CodePayload(marker)), "kp_detector": {}}, protocol=4))
    with pytest.raises(fp.CheckpointError, match=r"refusing to load.*(posix|os)\.system"):
        fp.load_model(path)
    assert not marker.exists()


def test_malicious_torch_checkpoint_is_refused_without_running_its_payload(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"generator": {"x": CodePayload(marker)}, "kp_detector": {}}, path)
    with pytest.raises(fp.CheckpointError, match="refusing to load"):
        fp.load_model(path)
    assert not marker.exists()


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(fp.CheckpointError, match=r"checkpoint not found: .*nope\.pth\.tar"):
        fp.load_model(tmp_path / "nope.pth.tar")


def test_unknown_format_is_named(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(fp.CheckpointError, match="unknown checkpoint format"):
        fp.load_model(path)


def test_golden_vector_file_is_not_mistaken_for_a_checkpoint(golden_dir):
    with pytest.raises(fp.CheckpointError, match="no 'generator"):
        fp.load_model(golden_dir / "fomm" / "fomm-tiny-vox.safetensors")


def test_state_dict_that_does_not_fit_lists_missing_unexpected_and_shapes(golden_dir, tmp_path):
    data = torch.load(golden_dir / "fomm" / "fomm-tiny-vox.pth.tar", map_location="cpu", weights_only=True)
    gen = dict(data["generator"])
    gen.pop("final.bias")
    gen["extra.weight"] = torch.zeros(1)
    gen["first.norm.running_mean"] = torch.zeros(99)
    data["generator"] = gen
    path = tmp_path / "broken.pth.tar"
    torch.save(data, path)
    with pytest.raises(fp.CheckpointError) as err:
        read_then_build(path)
    msg = str(err.value)
    assert "missing: final.bias" in msg
    assert "unexpected: extra.weight" in msg
    assert "first.norm.running_mean (99,) != (8,)" in msg


def read_then_build(path):
    from fom_pipeline.checkpoints import networks_from_checkpoint

    ckpt = read_checkpoint(path)
    ckpt.config = RELEASE_CONFIGS["vox-256"] if ckpt.config is None else ckpt.config
    # keep the inferred config: the error must come from loading, not inference
    return networks_from_checkpoint(ckpt, path)


def test_random_weights_round_trip_through_our_safetensors(tiny_model, tiny_checkpoint):
    loaded = fp.load_model(tiny_checkpoint, precision="fp32")  # as tiny_model runs
    assert loaded.config == tiny_model.config
    frames = torch.rand(3, 256, 256, 3)
    a = tiny_model.extract_keypoints(frames)
    b = loaded.extract_keypoints(frames)
    assert torch.equal(a.value, b.value) and torch.equal(a.jacobian, b.jacobian)


def test_convert_refuses_other_output_formats_and_keeps_input(golden_dir, tmp_path):
    src = tmp_path / "in.pth.tar"
    shutil.copy(golden_dir / "fomm" / "fomm-tiny-vox.pth.tar", src)
    before = src.read_bytes()
    with pytest.raises(fp.CheckpointError, match=r"\.safetensors"):
        fp.convert(src, tmp_path / "out.pth")
    assert src.read_bytes() == before


def test_pdparams_bare_arrays_and_paddle_bookkeeping_entry_are_accepted(golden_dir, tmp_path):
    """Older paddle.save files store bare ndarrays and may add 'StructuredToParameterName@@'."""
    from fom_pipeline.checkpoints import _RestrictedUnpickler

    with open(golden_dir / "paddle" / "paddle-tiny-vox.pdparams", "rb") as f:
        data = _RestrictedUnpickler(f).load()
    bare = {part: OrderedDict((k, v[1]) for k, v in sd.items()) for part, sd in data.items()}
    bare["generator"]["StructuredToParameterName@@"] = {"a": "b"}
    path = tmp_path / "old-style.pdparams"
    path.write_bytes(pickle.dumps(bare, protocol=2))
    model = fp.load_model(path)
    ref = fp.load_model(golden_dir / "paddle" / "paddle-tiny-vox.pdparams")
    x = torch.rand(2, 256, 256, 3)
    assert torch.equal(model.extract_keypoints(x).value, ref.extract_keypoints(x).value)


def test_a_config_set_by_hand_is_checked_before_its_sizes_are_computed(tiny_checkpoint):
    """A Python caller may give a Checkpoint any config: one asking for 10**18 blocks is refused at once
    (computing the image sizes it can run would take 2**(10**18) first)."""
    from fom_pipeline.model import model_from_checkpoint

    ckpt = read_checkpoint(tiny_checkpoint)
    ckpt.config["kp_detector_params"]["num_blocks"] = 10**18
    with pytest.raises(fp.CheckpointError, match=r"kp_detector_params.num_blocks 1000000000000000000 is out of range"):
        model_from_checkpoint(ckpt, tiny_checkpoint)
