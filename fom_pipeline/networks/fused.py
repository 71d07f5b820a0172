"""The inference form of the networks, built once at load time from the trained form.

The trained form (blocks.py, mobile.py, the three networks) is the paper's modules and holds the
checkpoint's state dict. For inference the same maths runs faster on a CPU when:
- each BatchNorm is folded into the convolution before it (a separate BatchNorm is a full pass
  over memory),
- nearest x2 upsampling followed by a 3x3 convolution is computed as four 2x2 convolutions at the
  low resolution (upsample-then-convolve does 2.25x the multiply-adds it needs),
- activations are channels-last from the entry of each convolution stack,
- the generator's 7x7 RGB head runs as a 7x1 convolution to 21 channels plus shifted float32 adds
  (oneDNN idles on 3 output channels).

:func:`inference_form` copies the module tree, replacing each block by its folded equivalent and
sharing every module it leaves alone (heads, anti-alias filters, unfolded BatchNorms). Folding runs
in float32 and casts back to the weights' dtype, so build it after moving and casting the trained
form. The trained form is left untouched: checkpoints, ``save()`` and conversion see it only.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from .generator import OcclusionAwareGenerator
from .keypoint_detector import KPDetector
from .mobile import MobileDownBlock2d, MobileResBlock2d, MobileUpBlock2d


class Networks(NamedTuple):
    generator: OcclusionAwareGenerator
    kp_detector: KPDetector


def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of eval-mode ``norm(conv(x))`` as one convolution: float32 math, conv's dtype."""
    dtype = conv.weight.dtype
    weight = conv.weight.detach().float()
    bias = conv.bias.detach().float() if conv.bias is not None else None
    if norm is not None:
        scale = norm.running_var.float().add(norm.eps).rsqrt()
        if norm.weight is not None:
            scale = scale * norm.weight.detach().float()
        shift = -norm.running_mean.float() * scale
        if norm.bias is not None:
            shift = shift + norm.bias.detach().float()
        weight = weight * scale.view(-1, 1, 1, 1)
        bias = shift if bias is None else bias * scale + shift
    return weight.to(dtype), (bias.to(dtype) if bias is not None else None)


def _frozen(tensor: torch.Tensor | None) -> nn.Parameter | None:
    return None if tensor is None else nn.Parameter(tensor.contiguous(memory_format=torch.channels_last)
                                                    if tensor.dim() == 4 else tensor, requires_grad=False)


class FoldedConv(nn.Module):
    """``relu(norm(conv(x)))`` (norm, relu optional) as one convolution with channels-last weights."""

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d | None = None, relu: bool = False):
        super().__init__()
        weight, bias = _fold(conv, norm)
        self.weight, self.bias = _frozen(weight), _frozen(bias)
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.relu = relu

    def forward(self, x):
        out = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return out.relu_() if self.relu else out


def _can_upsample_conv(conv: nn.Conv2d) -> bool:
    return (conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1)


def _phase_weights(weight: torch.Tensor) -> torch.Tensor:
    """The 3x3 kernel seen through nearest x2 upsampling, as four 2x2 kernels stacked on the output axis.

    Output pixel (2i+a, 2j+b) reads upsampled rows 2i+a-1..2i+a+1, i.e. low-res rows
    (i-1, i, i) for a=0 and (i, i, i+1) for a=1: taps landing on the same low-res row add up.
    """
    w = weight.float()
    rows = [torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2), torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2)]
    phases = []
    for r in rows:
        phases += [torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1), torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1)]
    return torch.cat(phases, 0).to(weight.dtype)  # order: (a, b) = (0,0), (0,1), (1,0), (1,1)


class UpsampleConv(nn.Module):
    """``relu(norm(conv3x3(upsample_nearest_x2(x))))`` as four 2x2 convolutions on the small input."""

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d | None = None, relu: bool = False):
        super().__init__()
        weight, bias = _fold(conv, norm)
        self.weight = _frozen(_phase_weights(weight))
        self.bias = _frozen(bias.repeat(4) if bias is not None else None)
        self.relu = relu

    def forward(self, x):
        n, _, h, w = x.shape
        cout = self.weight.shape[0] // 4
        out = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias)  # [n, 4*cout, h+1, w+1]
        if self.relu:
            out.relu_()
        y = torch.empty((n, cout, 2 * h, 2 * w), dtype=out.dtype, device=out.device, memory_format=torch.channels_last)
        for a in range(2):
            for b in range(2):
                p = 2 * a + b
                y[:, :, a::2, b::2] = out[:, p * cout : (p + 1) * cout, a : a + h, b : b + w]
        return y


def _can_column_conv(conv: nn.Conv2d) -> bool:
    """Wide kernels with few outputs (the 7x7 -> RGB head), where oneDNN's direct kernel idles."""
    return (conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.kernel_size[1] > 1 and conv.out_channels * conv.kernel_size[1] <= 64
            and isinstance(conv.padding, tuple))


class ColumnConv(nn.Module):
    """``conv(x)`` in float32 as a (kh x 1) convolution to kw * cout channels plus kw shifted adds.

    The column convolution has kw times more output channels, so it runs at full vector width;
    the shifted adds accumulate in float32.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        cout, cin, kh, kw = conv.weight.shape
        columns = conv.weight.detach().permute(3, 0, 1, 2).reshape(kw * cout, cin, kh, 1)
        self.weight = _frozen(columns)
        self.bias = _frozen(conv.bias.detach().float() if conv.bias is not None else None)
        self.out_channels, self.padding, self.width = cout, conv.padding, kw

    def forward(self, x):
        cout, (ph, pw), kw = self.out_channels, self.padding, self.width
        z = F.conv2d(F.pad(x, (pw, pw, 0, 0)), self.weight, None, padding=(ph, 0))
        width = z.shape[3] - kw + 1
        y = z[:, 0:cout, :, 0:width].float()
        if self.bias is not None:
            y += self.bias.view(1, -1, 1, 1)
        for dx in range(1, kw):
            y += z[:, dx * cout : (dx + 1) * cout, :, dx : dx + width]
        return y


class Residual(nn.Sequential):
    """``x + layers(x)``."""

    def forward(self, x):
        return super().forward(x).add_(x)


class ChannelsLast(nn.Sequential):
    """Runs its layers on a channels-last copy of the input (the entry of a convolution stack)."""

    def forward(self, x):
        return super().forward(x.contiguous(memory_format=torch.channels_last))


def _upsample_conv(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Module:
    if _can_upsample_conv(conv):
        return UpsampleConv(conv, norm, relu=True)
    return nn.Sequential(nn.Upsample(scale_factor=2), FoldedConv(conv, norm, relu=True))


# Each trained block and the module that computes the same thing for inference.
_BLOCKS = {
    SameBlock2d: lambda b: FoldedConv(b.conv, b.norm, relu=True),
    DownBlock2d: lambda b: nn.Sequential(FoldedConv(b.conv, b.norm, relu=True), b.pool),
    UpBlock2d: lambda b: _upsample_conv(b.conv, b.norm),
    ResBlock2d: lambda b: Residual(b.norm1, nn.ReLU(inplace=True), FoldedConv(b.conv1, b.norm2, relu=True),
                                   FoldedConv(b.conv2)),
    MobileDownBlock2d: lambda b: nn.Sequential(FoldedConv(b.conv, b.norm, relu=True),
                                               FoldedConv(b.conv1, b.norm1, relu=True), b.pool),
    MobileUpBlock2d: lambda b: nn.Sequential(nn.Upsample(scale_factor=2), FoldedConv(b.conv, b.norm, relu=True),
                                             FoldedConv(b.conv1, b.norm1, relu=True)),
    MobileResBlock2d: lambda b: Residual(b.norm1, nn.ReLU(inplace=True), FoldedConv(b.conv_pw, b.norm_pw),
                                         FoldedConv(b.conv_dw, b.norm_dw, relu=True),
                                         FoldedConv(b.conv_pw_linear, b.norm_pw_linear)),
}


def _fused_tree(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every known block folded; modules without blocks below are shared."""
    rule = _BLOCKS.get(type(module))
    if rule is not None:
        return rule(module).eval()
    if not module._modules:
        return module
    out = copy.copy(module)  # same attributes; its own module, parameter, buffer and hook tables
    out.__dict__.update({k: copy.copy(v) for k, v in module.__dict__.items() if isinstance(v, dict)})
    for name, child in module._modules.items():
        out._modules[name] = None if child is None else _fused_tree(child)
    return out


@torch.no_grad()
def inference_form(generator: OcclusionAwareGenerator, kp_detector: KPDetector) -> Networks:
    """The networks to run for inference; same outputs as the trained form within float rounding."""
    gen, kp = _fused_tree(generator), _fused_tree(kp_detector)
    gen.first = ChannelsLast(gen.first)  # the source encoder
    gen.bottleneck = ChannelsLast(gen.bottleneck)  # the decoder, fed by the float32 NCHW warp
    gen.dense_motion_network.hourglass = ChannelsLast(gen.dense_motion_network.hourglass)
    kp.predictor = ChannelsLast(kp.predictor)
    if isinstance(gen.final, nn.Conv2d) and _can_column_conv(gen.final):
        gen.final = ColumnConv(gen.final)
    return Networks(gen, kp)
