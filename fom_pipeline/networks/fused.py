"""Inference-only fast paths: BatchNorm folded into the convolution before it, and nearest-x2
upsampling + 3x3 convolution computed as four 2x2 convolutions at the low resolution.

Why: on a CPU every separate BatchNorm is a full pass over memory, and upsample-then-convolve does
2.25x the multiply-adds it needs. The folded weights are derived copies kept outside the state
dict (so checkpoints and ``save()`` see the original tensors) and are rebuilt whenever a source
tensor changes (``load_state_dict``, ``.to(dtype)``, in-place edits), keyed by tensor identity and
version counter. They are used only in eval mode with autograd off; training keeps the plain path.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

_ENABLED = [True]


def fast_path(module: nn.Module) -> bool:
    """True when the folded inference path is valid for this module right now."""
    return _ENABLED[0] and not module.training and not torch.is_grad_enabled()


@contextlib.contextmanager
def plain_ops():
    """Run the unfused, channels-first ops inside this block (benchmarks' reference, debugging)."""
    previous, _ENABLED[0] = _ENABLED[0], False
    try:
        yield
    finally:
        _ENABLED[0] = previous


def _key(tensors) -> tuple:
    out = []
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        try:
            version = t._version
        except RuntimeError:  # inference tensors carry no version counter
            version = -1
        out.append((id(t), t.data_ptr(), version, t.dtype, t.device))
    return tuple(out)


def _cached(owner: nn.Module, name: str, sources: list, build):
    """Derived tensors cached on ``owner`` (as a plain attribute, never in the state dict)."""
    key = _key(sources)
    hit = owner.__dict__.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.no_grad():
        value = build()
    owner.__dict__[name] = (key, value)
    return value


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """conv then eval-mode bn as one conv: float32 math, cast back to the conv's dtype."""
    dtype = conv.weight.dtype
    weight = conv.weight.float()
    bias = conv.bias.float() if conv.bias is not None else None
    if bn is not None:
        scale = bn.running_var.float().add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.float()
        shift = -bn.running_mean.float() * scale
        if bn.bias is not None:
            shift = shift + bn.bias.float()
        weight = weight * scale.view(-1, 1, 1, 1)
        bias = shift if bias is None else bias * scale + shift
    weight = weight.to(dtype).contiguous(memory_format=torch.channels_last)
    return weight, (bias.to(dtype) if bias is not None else None)


def _sources(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> list:
    out = [conv.weight, conv.bias]
    if bn is not None:
        out += [bn.weight, bn.bias, bn.running_mean, bn.running_var]
    return out


def folded(conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of ``bn(conv(x))`` as a single convolution, cached on ``conv``."""
    return _cached(conv, "_folded_bn" if bn is not None else "_folded", _sources(conv, bn), lambda: _fold(conv, bn))


def conv_bn(x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None, relu: bool = False) -> torch.Tensor:
    """``relu(bn(conv(x)))`` through the folded weights (caller checks :func:`fast_path`)."""
    weight, bias = folded(conv, bn)
    out = F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return out.relu_() if relu else out


def _phase_weights(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The 3x3 kernel seen through nearest x2 upsampling, as four 2x2 kernels stacked on the output axis.

    Output pixel (2i+a, 2j+b) reads upsampled rows 2i+a-1..2i+a+1, i.e. low-res rows
    (i-1, i, i) for a=0 and (i, i, i+1) for a=1: taps landing on the same low-res row add up.
    """
    weight, bias = folded(conv, bn)
    w = weight.float()
    rows = [torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2), torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2)]
    phases = []
    for a in range(2):
        r = rows[a]
        cols = [torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1), torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1)]
        phases += cols  # order: (a, b) = (0,0), (0,1), (1,0), (1,1)
    stacked = torch.cat(phases, 0).to(weight.dtype).contiguous(memory_format=torch.channels_last)
    return stacked, (bias.repeat(4) if bias is not None else None)


def can_upsample_conv(conv: nn.Conv2d) -> bool:
    return (conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1)


def upsample_conv_bn(x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None,
                     relu: bool = False) -> torch.Tensor:
    """``relu(bn(conv(interpolate(x, scale_factor=2))))`` (nearest) without building the big input."""
    weight, bias = _cached(conv, "_phases", _sources(conv, bn), lambda: _phase_weights(conv, bn))
    n, _, h, w = x.shape
    cout = weight.shape[0] // 4
    out = F.conv2d(F.pad(x, (1, 1, 1, 1)), weight, bias)  # [n, 4*cout, h+1, w+1]
    if relu:
        out.relu_()
    y = torch.empty((n, cout, 2 * h, 2 * w), dtype=out.dtype, device=out.device, memory_format=torch.channels_last)
    for a in range(2):
        for b in range(2):
            p = 2 * a + b
            y[:, :, a::2, b::2] = out[:, p * cout : (p + 1) * cout, a : a + h, b : b + w]
    return y


def _column_weights(conv: nn.Conv2d) -> torch.Tensor:
    w = conv.weight
    cout, cin, kh, kw = w.shape
    return w.permute(3, 0, 1, 2).reshape(kw * cout, cin, kh, 1).contiguous(memory_format=torch.channels_last)


def can_column_conv(conv: nn.Conv2d) -> bool:
    """Wide kernels with few outputs (the 7x7 -> RGB head), where oneDNN's direct kernel idles."""
    return (conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.kernel_size[1] > 1 and conv.out_channels * conv.kernel_size[1] <= 64
            and isinstance(conv.padding, tuple))


def column_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` in float32 as a (kh x 1) convolution to kw * cout channels plus kw shifted adds.

    The column convolution has kw times more output channels, so it runs at full vector width;
    the shifted adds accumulate in float32.
    """
    weight = _cached(conv, "_columns", [conv.weight], lambda: _column_weights(conv))
    cout = conv.out_channels
    (ph, pw), kw = conv.padding, conv.kernel_size[1]
    z = F.conv2d(F.pad(x, (pw, pw, 0, 0)), weight, None, padding=(ph, 0))
    width = z.shape[3] - kw + 1
    y = z[:, 0:cout, :, 0:width].float()
    if conv.bias is not None:
        y += conv.bias.float().view(1, -1, 1, 1)
    for dx in range(1, kw):
        y += z[:, dx * cout : (dx + 1) * cout, :, dx : dx + width]
    return y
