"""Building blocks shared by the three FOMM networks.

Module and attribute names follow the original 2019 release (``conv``, ``norm``, ``down_blocks``, ...)
because checkpoints are matched by state-dict key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_coordinate_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[H, W, 2] grid of (x, y) in [-1, 1], the coordinate system keypoints live in."""
    x = torch.arange(width, device=device, dtype=dtype)
    y = torch.arange(height, device=device, dtype=dtype)
    x = 2 * (x / (width - 1)) - 1
    y = 2 * (y / (height - 1)) - 1
    return torch.stack([x.view(1, -1).expand(height, width), y.view(-1, 1).expand(height, width)], dim=2)


def keypoint_gaussians(value: torch.Tensor, height: int, width: int, variance: float) -> torch.Tensor:
    """Gaussian blob per keypoint: value [B, K, 2] -> [B, K, H, W]."""
    grid = make_coordinate_grid(height, width, value.device, value.dtype)
    diff = grid.view(1, 1, height, width, 2) - value.view(*value.shape[:2], 1, 1, 2)
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


class ResBlock2d(nn.Module):
    """Pre-activation residual block that keeps resolution."""

    def __init__(self, in_features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest x2 upsampling, then conv-norm-relu."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=2)
        return F.relu(self.norm(self.conv(out)))


class DownBlock2d(nn.Module):
    """conv-norm-relu, then 2x2 average pooling."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """conv-norm-relu at the same resolution."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1, groups=1, bias=True):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups, bias=bias)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


def _encoder_channels(block_expansion: int, in_features: int, num_blocks: int, max_features: int):
    return [
        (in_features if i == 0 else min(max_features, block_expansion * 2**i),
         min(max_features, block_expansion * 2 ** (i + 1)))
        for i in range(num_blocks)
    ]


def _decoder_channels(block_expansion: int, num_blocks: int, max_features: int):
    out = []
    for i in reversed(range(num_blocks)):
        in_filters = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
        out.append((in_filters, min(max_features, block_expansion * 2**i)))
    return out


class Encoder(nn.Module):
    """Hourglass encoder: returns the input and every down-sampled feature map (for skips)."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, down_block=DownBlock2d):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            down_block(cin, cout) for cin, cout in _encoder_channels(block_expansion, in_features, num_blocks, max_features)
        )

    def forward(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: up-samples and concatenates the matching encoder output each step."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, up_block=UpBlock2d):
        super().__init__()
        self.up_blocks = nn.ModuleList(
            up_block(cin, cout) for cin, cout in _decoder_channels(block_expansion, num_blocks, max_features)
        )
        self.out_filters = block_expansion + in_features

    def forward(self, skips):
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net style encoder-decoder used by the keypoint detector and the dense motion network."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, mobile=False):
        super().__init__()
        if mobile:
            from .mobile import MobileDownBlock2d, MobileUpBlock2d

            down, up = MobileDownBlock2d, MobileUpBlock2d
        else:
            down, up = DownBlock2d, UpBlock2d
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, down)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, up)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))


def antialias_kernel(scale: float, mobile: bool = False) -> torch.Tensor:
    """The Gaussian the release uses before down-sampling (the mobile variant uses a fixed 3x3)."""
    if mobile:
        sigma, size = 0.25, 3
    else:
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
    # Always on the CPU: a few numbers, also when networks are built on the meta device for their shapes.
    coords = torch.arange(size, dtype=torch.float32, device="cpu") - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = g.view(-1, 1) * g.view(1, -1)
    return kernel / kernel.sum()


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then subsample, so down-scaled inputs do not alias.

    The kernel is a buffer (``weight``) stored in checkpoints; its size sets the padding.
    """

    def __init__(self, channels: int, scale: float, mobile: bool = False):
        super().__init__()
        kernel = antialias_kernel(scale, mobile)
        self.register_buffer("weight", kernel.view(1, 1, *kernel.shape).repeat(channels, 1, 1, 1))
        self.groups = channels
        self.scale = scale

    def forward(self, x):
        if self.scale == 1.0:
            return x
        size = self.weight.shape[-1]
        ka = size // 2
        kb = ka - 1 if size % 2 == 0 else ka
        out = F.conv2d(F.pad(x, (ka, kb, ka, kb)), self.weight.to(x.dtype), groups=self.groups)
        step = 1 / self.scale
        if abs(step - round(step)) < 1e-6:
            s = int(round(step))
            return out[:, :, ::s, ::s]
        return F.interpolate(out, scale_factor=(self.scale, self.scale))


def identity_blend_weight(height: int, width: int, margin: int = 5, device=None) -> torch.Tensor:
    """PaddleGAN's inference-mode border weight G [1, H, W, 1].

    A box of ones with a ``margin``-pixel zero border, blurred separably with OpenCV's fixed 9-tap
    table for ksize 9 / sigma 0 (not a sigma-1.7 Gaussian), zero outside the image.
    """
    taps = torch.tensor([1, 3.25, 7.5, 12.75, 15, 12.75, 7.5, 3.25, 1], dtype=torch.float64) / 64
    box = torch.zeros(1, 1, height, width, dtype=torch.float64)
    box[..., margin : height - margin, margin : width - margin] = 1
    out = F.conv2d(F.pad(box, (4, 4, 0, 0)), taps.view(1, 1, 1, 9))
    out = F.conv2d(F.pad(out, (0, 0, 4, 4)), taps.view(1, 1, 9, 1))
    return out.view(1, height, width, 1).to(device=device, dtype=torch.float32)
