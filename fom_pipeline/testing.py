"""Small random models for tests and benchmarks (real weights cannot be downloaded everywhere)."""

from __future__ import annotations

import copy

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
