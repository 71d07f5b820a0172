"""Device rules: what "auto" means and which devices exist here, decided once for every part of the
engine (the model, the face detector, the restorer) and every front end (ComfyUI puts its own device
behind "auto")."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .errors import InputError

__all__ = ["best_device", "resolve_device"]

# How each front end asks for the CPU when the device asked for is not there.
_USE_CPU = {"python": "use device='cpu'", "cli": "use --device cpu", "node": "pick device cpu or auto"}


def best_device() -> torch.device:
    """What "auto" stands for outside ComfyUI: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device, auto: Callable[[], torch.device] = best_device) -> torch.device:
    """The device to run on: "auto" is ``auto()`` (a front end may put its own choice there, e.g.
    ComfyUI's); anything unknown or unavailable is a clear error. Every front end decides here."""
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device(auto())
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device '{device}'; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unknown device '{device}'; use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{device}' asked for, but no CUDA GPU is available", **_USE_CPU)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise InputError(f"device '{device}': only {count} CUDA GPU(s) here, cuda:0 to cuda:{count - 1}")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"device '{device}' asked for, but Apple MPS is not available", **_USE_CPU)
    return dev
