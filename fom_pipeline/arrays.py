"""Tensor <-> numpy conversion, written once: the engine takes either wherever it takes pictures."""

from __future__ import annotations

import numpy as np
import torch


def as_numpy(value, dtype=None) -> np.ndarray:
    """``value`` (a torch tensor on any device, or anything numpy reads) as a numpy array.

    A tensor is detached and moved to the CPU (bf16, which numpy lacks, becomes float32); ``dtype``
    casts the result, without a copy when it already has that type.
    """
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        array = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
        return array if dtype is None else array.astype(dtype, copy=False)
    return np.asarray(value, dtype)


def as_tensor(value) -> torch.Tensor:
    """``value`` as a torch tensor: a tensor as it is, a numpy array shared (made contiguous first)."""
    if isinstance(value, torch.Tensor):
        return value
    return torch.from_numpy(np.ascontiguousarray(value))
