"""Small random models for tests and benchmarks (real weights cannot be downloaded everywhere)."""

from __future__ import annotations

import copy
import itertools
import os
import pickle
from collections import OrderedDict

import numpy as np
import torch

from .checkpoints import build_networks
from .config import RELEASE_CONFIGS
from .model import FOMModel


def tiny_config(num_kp: int = 10, mobile: bool = False) -> dict:
    """The vox architecture with narrow channels and two bottleneck blocks: fast on a CPU."""
    config = copy.deepcopy(RELEASE_CONFIGS["vox-mobile-256" if mobile else "vox-256"])
    config["common_params"]["num_kp"] = num_kp
    config["kp_detector_params"].update(block_expansion=8, max_features=32)
    gen = config["generator_params"]
    gen.update(block_expansion=8, max_features=32, num_bottleneck_blocks=2)
    gen["dense_motion_params"].update(block_expansion=8, max_features=32)
    return config


def full_config(name: str = "vox-256") -> dict:
    return copy.deepcopy(RELEASE_CONFIGS[name])


def randomize_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Seeded random weights with sane batch-norm statistics, so outputs are neither flat nor NaN."""
    for name, p in module.state_dict().items():
        if not p.is_floating_point() or name.endswith("down.weight"):
            continue
        if name.endswith("running_var") or (name.endswith("weight") and p.dim() == 1):
            p.copy_(torch.rand(p.shape, generator=generator) + 0.5)
        elif name.endswith(("running_mean", "bias")):
            p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
        else:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5)


def _identity_jacobian_head(kp_detector) -> None:
    head = kp_detector.jacobian
    if head is None:
        return
    last = head[-1] if isinstance(head, torch.nn.Sequential) else head
    maps = last.weight.shape[0] // 4
    last.weight.mul_(0.05)
    last.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(maps) + last.bias * 0.5)


def random_model(config: dict | None = None, seed: int = 0, image_size: int = 256, device: str = "cpu",
                 precision: str = "fp32", origin: str = "fomm") -> FOMModel:
    """A FOMModel with seeded random weights (jacobians near identity, keypoints spread out)."""
    config = config or tiny_config()
    generator, kp_detector = build_networks(config)
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        randomize_(generator, rng)
        randomize_(kp_detector, rng)
        _identity_jacobian_head(kp_detector)
        head = kp_detector.kp[-1] if isinstance(kp_detector.kp, torch.nn.Sequential) else kp_detector.kp
        head.weight.mul_(3.0)
    return FOMModel(generator, kp_detector, config, origin, image_size, device, precision)


def write_pdparams(path: str | os.PathLike, generator: dict, kp_detector: dict, bare: bool = False) -> None:
    """Write state dicts as PaddleGAN's ``paddle.save`` lays out a FOMM checkpoint: a pickled dict
    ``{"generator", "kp_detector"}`` of OrderedDicts mapping paddle names (``_mean``/``_variance`` for
    batch-norm statistics, no ``num_batches_tracked``) to ``(tensor name, float32 array)`` tuples
    (``bare=True``: bare arrays, as older paddle versions saved them)."""
    names = itertools.count(1)

    def section(sd: dict) -> OrderedDict:
        out = OrderedDict()
        for key, value in sd.items():
            if key.endswith("num_batches_tracked"):
                continue
            prefix, _, last = key.rpartition(".")
            last = {"running_mean": "_mean", "running_var": "_variance"}.get(last, last)
            array = value.detach().cpu().float().numpy().astype(np.float32)
            out[f"{prefix}.{last}"] = array if bare else (f"param_{next(names)}", array)
        return out

    with open(path, "wb") as f:
        pickle.dump({"generator": section(generator), "kp_detector": section(kp_detector)}, f, protocol=4)


def write_model_pdparams(path: str | os.PathLike, model: FOMModel) -> None:
    """A FOMModel's weights in PaddleGAN's .pdparams layout (see :func:`write_pdparams`)."""
    write_pdparams(path, model.generator.state_dict(), model.kp_detector.state_dict())

