"""S3FD face-detector weights, read without running pickle code and loaded into face-alignment's network.

face-alignment's own ``SFDDetector`` reads its file with a bare ``torch.load`` on older releases (and
fetches a URL when given none); the pack reads the weights here instead and hands the network over
(see ``faces.detect``). The download check in ``weights`` uses the same reader.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CheckpointError
from .known_weights import KNOWN_WEIGHTS


def _unusable_sfd(name: str, reason: str | BaseException) -> CheckpointError:
    """The one-line refusal; ``reason`` is a failure's text, or the exception itself (its first line)."""
    text = str(reason).strip()
    first = text.splitlines()[0] if text else type(reason).__name__
    return CheckpointError(
        f"{name} is not usable S3FD weights ({first[:160]}); download {KNOWN_WEIGHTS['s3fd'].url} again"
    )


def read_sfd_state_dict(path: str | os.PathLike, name: str | None = None) -> dict:
    """S3FD's state dict from ``path``, read without running pickle code.

    ``.pth``/``.pt``: ``torch.load(weights_only=True)`` (a pickle that asks for anything but tensors
    and plain containers is refused); ``.safetensors``: read as such. ``name`` decides the format
    when ``path`` has another name (a download still called ``*.part``).
    """
    import torch

    from .checkpoints import load_torch_weights

    path = Path(path)
    name = name or path.name
    if name.lower().endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:
            raise _unusable_sfd(name, exc) from None
    else:
        state = load_torch_weights(path, name, "S3FD weights are a plain tensor state dict",
                                   lambda reason: _unusable_sfd(name, reason))
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _unusable_sfd(name, "the file holds no tensor state dict")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def load_sfd_network(path: str | os.PathLike, name: str | None = None):
    """face-alignment's S3FD network (on the CPU, eval mode) with the weights of ``path`` loaded strictly."""
    from face_alignment.detection.sfd.net_s3fd import s3fd

    name = name or Path(path).name
    state = read_sfd_state_dict(path, name)
    net = s3fd()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise _unusable_sfd(name, exc) from None
    return net.eval()
