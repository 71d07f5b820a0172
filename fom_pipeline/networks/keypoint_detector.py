"""Keypoint detector: an hourglass predicts K heatmaps; soft-argmax gives keypoints, and
heatmap-weighted jacobian maps give each keypoint's local 2x2 affine transform."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid
from .mobile import three_conv_head


class KPDetector(nn.Module):
    def __init__(
        self,
        block_expansion: int,
        num_kp: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        estimate_jacobian: bool = False,
        scale_factor: float = 1,
        single_jacobian_map: bool = False,
        pad: int = 0,
        mobile_net: bool = False,
    ):
        super().__init__()
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features, mobile=mobile_net)
        features = self.predictor.out_filters
        if mobile_net:
            self.kp = three_conv_head(features, num_kp, padding=pad, relu=False)
        else:
            self.kp = nn.Conv2d(features, num_kp, kernel_size=(7, 7), padding=pad)
        self.num_jacobian_maps = (1 if single_jacobian_map else num_kp) if estimate_jacobian else 0
        if estimate_jacobian:
            maps = 4 * self.num_jacobian_maps
            if mobile_net:
                self.jacobian = three_conv_head(features, maps, padding=pad, relu=False)
                last = self.jacobian[-1]
            else:
                self.jacobian = nn.Conv2d(features, maps, kernel_size=(7, 7), padding=pad)
                last = self.jacobian
            with torch.no_grad():  # identity jacobians until trained weights are loaded
                last.weight.zero_()
                last.bias.copy_(torch.tensor([1, 0, 0, 1], dtype=torch.float32).repeat(self.num_jacobian_maps))
        else:
            self.jacobian = None
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor, mobile=mobile_net)

    def forward(self, x: torch.Tensor) -> dict:
        """x [B, C, H, W] -> {"value": [B, K, 2], "jacobian": [B, K, 2, 2]} in float32.

        The network may run in reduced precision; the softmax and soft-argmax run in float32.
        """
        if self.scale_factor != 1:
            x = self.down(x)
        dtype = next(self.predictor.parameters()).dtype
        features = self.predictor(x.to(dtype))
        logits = self.kp(features).float().contiguous()  # contiguous: the inference form runs channels-last
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, -1) / self.temperature, dim=2).view(b, k, h, w)
        grid = make_coordinate_grid(h, w, heatmap.device)
        value = (heatmap.unsqueeze(-1) * grid.view(1, 1, h, w, 2)).sum(dim=(2, 3))
        out = {"value": value}
        if self.jacobian is not None:
            jmap = self.jacobian(features).float().reshape(b, self.num_jacobian_maps, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * jmap).view(b, k, 4, -1).sum(dim=-1)
            out["jacobian"] = jacobian.view(b, k, 2, 2)
        return out
