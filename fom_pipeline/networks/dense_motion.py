"""Dense motion network: turns sparse keypoint motions into a dense backward-warp field and an
occlusion map, working on a down-scaled copy of the source image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import AntiAliasInterpolation2d, Hourglass, keypoint_gaussians, make_coordinate_grid
from .mobile import three_conv_head


def sample_shared_input(image: torch.Tensor, grids: torch.Tensor, align_corners: bool) -> torch.Tensor:
    """grid_sample S images [S, C, h, w] at N grids [N, H, W, 2] -> [N, C, H, W], N a multiple of S.

    Grids come grouped by image (the first N / S sample image 0, ...); one image (S = 1) is sampled by
    every grid, as for a photo source. Each image's grids are stacked into one tall grid, so no
    image is ever copied N / S times.
    """
    n, gh, gw, _ = grids.shape
    s, c = image.shape[:2]
    per = n // s
    out = F.grid_sample(image, grids.reshape(s, per * gh, gw, 2), align_corners=align_corners)
    if s == 1:
        return out.view(c, n, gh, gw).transpose(0, 1)
    return out.view(s, c, per, gh, gw).transpose(1, 2).reshape(n, c, gh, gw)


class DenseMotionNetwork(nn.Module):
    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        num_channels: int,
        estimate_occlusion_map: bool = False,
        scale_factor: float = 1,
        kp_variance: float = 0.01,
        mobile_net: bool = False,
    ):
        super().__init__()
        in_features = (num_kp + 1) * (num_channels + 1)
        self.hourglass = Hourglass(block_expansion, in_features, num_blocks, max_features, mobile=mobile_net)
        features = self.hourglass.out_filters
        if mobile_net:
            self.mask = three_conv_head(features, num_kp + 1, padding=1, relu=True)
            self.occlusion = three_conv_head(features, 1, padding=1, relu=True) if estimate_occlusion_map else None
        else:
            self.mask = nn.Conv2d(features, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
            self.occlusion = (
                nn.Conv2d(features, 1, kernel_size=(7, 7), padding=(3, 3)) if estimate_occlusion_map else None
            )
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        self.align_corners = True
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor, mobile=mobile_net)

    def prepare_source(self, source_image: torch.Tensor, kp_source: dict) -> dict:
        """Everything that depends on the source alone, computed once per source, float32: one source
        (batch 1) for any number of driving frames, or one source per driving frame (a video's)."""
        small = self.down(source_image) if self.scale_factor != 1 else source_image
        h, w = small.shape[2:]
        return {
            "image": small.float(),
            "kp": {k: v.float() for k, v in kp_source.items()},
            "gaussians": keypoint_gaussians(kp_source["value"].float(), h, w, self.kp_variance),
        }

    def sparse_motions(self, prepared: dict, kp_driving: dict) -> torch.Tensor:
        """[B, K+1, h, w, 2]: for each keypoint, where each driving pixel comes from in the source."""
        h, w = prepared["image"].shape[2:]
        b = kp_driving["value"].shape[0]
        kp_source = prepared["kp"]
        identity = make_coordinate_grid(h, w, kp_driving["value"].device).view(1, 1, h, w, 2)
        coords = identity - kp_driving["value"].view(b, self.num_kp, 1, 1, 2)
        if "jacobian" in kp_driving and kp_driving["jacobian"] is not None:
            jac = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))
            coords = torch.einsum("bkij,bkhwj->bkhwi", jac, coords)
        driving_to_source = coords + kp_source["value"].view(-1, self.num_kp, 1, 1, 2)
        return torch.cat([identity.expand(b, 1, h, w, 2), driving_to_source], dim=1)

    def forward_prepared(self, prepared: dict, kp_driving: dict, dtype=torch.float32) -> dict:
        """Dense motion for a batch of driving keypoints against one prepared source."""
        image = prepared["image"]
        c, h, w = image.shape[1:]
        b = kp_driving["value"].shape[0]
        k1 = self.num_kp + 1
        heat = keypoint_gaussians(kp_driving["value"], h, w, self.kp_variance) - prepared["gaussians"]
        heat = torch.cat([heat.new_zeros(b, 1, h, w), heat], dim=1).unsqueeze(2)
        motions = self.sparse_motions(prepared, kp_driving)
        deformed = sample_shared_input(image, motions.reshape(b * k1, h, w, 2), self.align_corners)
        net_in = torch.cat([heat, deformed.view(b, k1, c, h, w)], dim=2).view(b, -1, h, w)
        features = self.hourglass(net_in.to(dtype))
        mask = F.softmax(self.mask(features).float(), dim=1)
        deformation = (motions.permute(0, 1, 4, 2, 3) * mask.unsqueeze(2)).sum(dim=1).permute(0, 2, 3, 1)
        out = {"mask": mask, "deformation": deformation, "sparse_deformed": deformed.view(b, k1, c, h, w)}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features).float())
        return out

    def forward(self, source_image: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict:
        """The original call signature (source batch 1 or matching the driving batch)."""
        if source_image.shape[0] == 1:
            return self.forward_prepared(self.prepare_source(source_image, kp_source), kp_driving)
        outs = [
            self.forward_prepared(
                self.prepare_source(source_image[i : i + 1], {k: v[i : i + 1] for k, v in kp_source.items()}),
                {k: v[i : i + 1] for k, v in kp_driving.items()},
            )
            for i in range(source_image.shape[0])
        ]
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
