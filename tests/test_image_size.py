"""The trained image size: an explicit value wins, else our .safetensors metadata, else a size in the
file name, else 256; sizes the networks cannot run are refused with a clear error."""

from __future__ import annotations

import shutil

import pytest
import torch

import fom_pipeline as fp
from fom_pipeline.checkpoints import image_size_from_name
from fom_pipeline.config import RELEASE_CONFIGS
from fom_pipeline.model import size_multiple
from fom_pipeline.testing import random_model, tiny_config, write_model_pdparams


@pytest.mark.parametrize(("name", "size"), [
    ("vox-cpk-512.pdparams", 512),
    ("vox-cpk.pdparams", None),
    ("my_model-384.pth.tar", 384),
    ("paddle-tiny-512.pdparams", 512),
    ("face-1024px.safetensors", 1024),
    ("s3fd-619a316812.pth", None),  # digits inside a token are no size
    ("vox256.pth.tar", None),
    ("checkpoint-100.pth.tar", None),  # not a multiple of 64
    ("run-00000099-epoch-384.pth", 384),
    ("model-32.pth", None),  # too small to be a crop size
])
def test_size_from_file_name(name, size):
    assert image_size_from_name(name) == size


@pytest.fixture(scope="module")
def tiny_pdparams(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sizes")
    write_model_pdparams(folder / "tiny.pdparams", random_model(seed=1))
    return folder


def _copy(folder, name):
    shutil.copy(folder / "tiny.pdparams", folder / name)
    return folder / name


def test_explicit_then_name_then_default(tiny_pdparams):
    plain = tiny_pdparams / "tiny.pdparams"
    named = _copy(tiny_pdparams, "tiny-384.pdparams")
    assert fp.load_model(plain).image_size == 256
    model = fp.load_model(named)
    assert model.image_size == 384
    # it really runs at that size: crops are resized to 384 and frames come out 384 px
    frames = model.animate(torch.rand(1, 200, 200, 3), model.extract_keypoints(torch.rand(2, 100, 100, 3)))
    assert tuple(frames.shape) == (2, 384, 384, 3)
    assert fp.load_model(named, image_size=256).image_size == 256
    assert fp.load_model(plain, image_size=512).image_size == 512


def test_stored_size_beats_the_name_and_explicit_beats_both(tiny_pdparams, tmp_path):
    converted = fp.convert(_copy(tiny_pdparams, "tiny-384.pdparams"), tmp_path / "renamed-512.safetensors")
    assert fp.load_model(converted).image_size == 384
    assert fp.load_model(converted, image_size=128).image_size == 128


@pytest.mark.parametrize(("value", "message"), [
    (300, r"^image_size 300 \(asked for\) does not fit this model's networks: use a multiple of 128 such as 256 or 384"),
    (64, r"^image_size 64 \(asked for\) does not fit .* multiple of 128 such as 128 or 256"),
    (0, r"^image_size 0 \(asked for\) is out of range; use 128 to 4096"),
    (-256, r"out of range"),
    (8192, r"out of range"),
    ("big", r"^image_size 'big' \(asked for\) must be a whole number"),
    (256.5, r"must be a whole number"),
    (True, r"must be a whole number"),
])
def test_sizes_the_networks_cannot_run_are_refused(tiny_pdparams, value, message):
    with pytest.raises(fp.InputError, match=message):
        fp.load_model(tiny_pdparams / "tiny.pdparams", image_size=value)


def test_a_bad_size_in_the_name_says_where_it_came_from(tiny_pdparams):
    with pytest.raises(fp.InputError, match=r"image_size 192 \(from the name tiny-192.pdparams\) does not fit"):
        fp.load_model(_copy(tiny_pdparams, "tiny-192.pdparams"))


def test_every_released_architecture_needs_multiples_of_128():
    for name in ("vox-256", "vox-mobile-256", "mgif-256"):
        assert size_multiple(RELEASE_CONFIGS[name]) == 128
    assert size_multiple(tiny_config()) == 128
    config = tiny_config()
    config["kp_detector_params"]["scale_factor"] = 0.5
    assert size_multiple(config) == 128  # the dense-motion hourglass still needs 128
    config["generator_params"]["dense_motion_params"]["scale_factor"] = 0.5
    assert size_multiple(config) == 64


@pytest.mark.parametrize("mobile", [False, True])
def test_the_multiple_is_what_the_networks_really_need(mobile):
    model = random_model(tiny_config(mobile=mobile), image_size=384)
    frames = model.animate(torch.rand(1, 384, 384, 3), model.extract_keypoints(torch.rand(1, 384, 384, 3)))
    assert frames.shape[1:3] == (384, 384)
    bad = random_model(tiny_config(mobile=mobile), image_size=320)
    with pytest.raises(RuntimeError):
        bad.extract_keypoints(torch.rand(1, 320, 320, 3))


def test_command_line_passes_any_image_size(tiny_pdparams, media_dir, tmp_path, monkeypatch, capsys):
    from fom_pipeline import cli

    seen = {}

    def fake_load_model(path, **kwargs):
        seen.update(kwargs, path=path)
        raise fp.InputError("stop here")

    monkeypatch.setattr(fp, "load_model", fake_load_model)
    args = ["--source_image", str(media_dir / "fom_source_image.png"), "--driving_video",
            str(media_dir / "fom_dv.mp4"), "--weight_path", str(tiny_pdparams / "tiny.pdparams"),
            "--faces", "48,40,208,216", "--output", str(tmp_path), "--max_frames", "2"]
    assert cli.main([*args, "--image_size", "384"]) == 1
    assert seen["image_size"] == 384 and capsys.readouterr().err.strip() == "error: stop here"
    seen.clear()
    assert cli.main(args) == 1
    assert seen["image_size"] is None  # auto: the file decides
    with pytest.raises(SystemExit):
        cli.main([*args, "--image_size", "0"])
    assert "--image_size: must be 1 or more" in capsys.readouterr().err


def test_command_line_refuses_a_size_the_model_cannot_run(tiny_pdparams, media_dir, tmp_path, capsys):
    from fom_pipeline import cli

    rc = cli.main(["--source_image", str(media_dir / "fom_source_image.png"), "--driving_video",
                   str(media_dir / "fom_dv.mp4"), "--weight_path", str(tiny_pdparams / "tiny.pdparams"),
                   "--faces", "48,40,208,216", "--output", str(tmp_path), "--max_frames", "2",
                   "--image_size", "320", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    assert err[0].startswith("error: image_size 320 (asked for) does not fit this model's networks: use a multiple "
                             "of 128 such as 256 or 384")
