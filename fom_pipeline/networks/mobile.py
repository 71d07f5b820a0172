"""PaddleGAN's mobile FOMM blocks (vox-mobile): depthwise-separable variants of the standard blocks.

Recognised from checkpoint keys (``conv1``/``norm1`` in hourglass blocks, ``conv_pw`` in the
bottleneck). Convolutions here carry no bias unless noted, as in PaddleGAN's release.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class MobileDownBlock2d(nn.Module):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU -> 2x2 average pool."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv2d(in_features, in_features, 3, padding=1, groups=in_features, bias=False)
        self.norm = nn.BatchNorm2d(in_features)
        self.conv1 = nn.Conv2d(in_features, out_features, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_features)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        out = F.relu(self.norm(self.conv(x)))
        return self.pool(F.relu(self.norm1(self.conv1(out))))


class MobileUpBlock2d(nn.Module):
    """Nearest x2 -> depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        # declared in PaddleGAN's order, so state dicts list keys the same way
        self.conv = nn.Conv2d(in_features, in_features, 3, padding=1, groups=in_features, bias=False)
        self.conv1 = nn.Conv2d(in_features, out_features, 1, bias=False)
        self.norm = nn.BatchNorm2d(in_features)
        self.norm1 = nn.BatchNorm2d(out_features)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=2)
        out = F.relu(self.norm(self.conv(out)))
        return F.relu(self.norm1(self.conv1(out)))


class MobileResBlock2d(nn.Module):
    """Inverted residual: BN-ReLU, expand 1x1 (x2), depthwise 3x3, project 1x1, add the input."""

    def __init__(self, in_features: int):
        super().__init__()
        hidden = in_features * 2
        self.conv_pw = nn.Conv2d(in_features, hidden, 1, bias=False)
        self.conv_dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False)
        self.conv_pw_linear = nn.Conv2d(hidden, in_features, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(in_features)
        self.norm_pw = nn.BatchNorm2d(hidden)
        self.norm_dw = nn.BatchNorm2d(hidden)
        self.norm_pw_linear = nn.BatchNorm2d(in_features)

    def forward(self, x):
        out = F.relu(self.norm1(x))
        out = self.norm_pw(self.conv_pw(out))
        out = F.relu(self.norm_dw(self.conv_dw(out)))
        out = self.norm_pw_linear(self.conv_pw_linear(out))
        return out + x


def three_conv_head(in_features: int, out_features: int, padding: int, relu: bool) -> nn.Sequential:
    """Three 3x3 convs with bias; ReLU between them when ``relu`` (keys .0/.2/.4), else keys .0/.1/.2."""
    convs = [
        nn.Conv2d(in_features, in_features, 3, padding=padding),
        nn.Conv2d(in_features, in_features, 3, padding=padding),
        nn.Conv2d(in_features, out_features, 3, padding=padding),
    ]
    if relu:
        return nn.Sequential(convs[0], nn.ReLU(), convs[1], nn.ReLU(), convs[2])
    return nn.Sequential(*convs)
