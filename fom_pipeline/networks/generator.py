"""Occlusion-aware generator: encodes the source, warps its features with the dense motion,
masks occluded parts and decodes the driven frame."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    DownBlock2d,
    ResBlock2d,
    SameBlock2d,
    UpBlock2d,
    identity_blend_weight,
    make_coordinate_grid,
)
from .dense_motion import DenseMotionNetwork, sample_shared_input
from .mobile import MobileDownBlock2d, MobileResBlock2d, MobileUpBlock2d, three_conv_head

OCCLUSION_BORDER = 5  # PaddleGAN's inference mode forces this many border pixels of the occlusion map to 1


class OcclusionAwareGenerator(nn.Module):
    def __init__(
        self,
        num_channels: int,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: dict | None = None,
        estimate_jacobian: bool = False,
        mobile_net: bool = False,
    ):
        super().__init__()
        self.mobile_net = mobile_net
        if dense_motion_params:
            self.dense_motion_network = DenseMotionNetwork(
                num_kp=num_kp,
                num_channels=num_channels,
                estimate_occlusion_map=estimate_occlusion_map,
                mobile_net=mobile_net,
                **dense_motion_params,
            )
        else:
            self.dense_motion_network = None
        if mobile_net:
            self.first = nn.Sequential(
                SameBlock2d(num_channels, num_channels, bias=False),
                SameBlock2d(num_channels, num_channels, bias=False),
                SameBlock2d(num_channels, block_expansion, bias=False),
            )
            down, up, res = MobileDownBlock2d, MobileUpBlock2d, MobileResBlock2d
        else:
            self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
            down = up = None
            res = None
        widths = [min(max_features, block_expansion * 2**i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(
            (down(widths[i], widths[i + 1]) if down else DownBlock2d(widths[i], widths[i + 1], 3, 1))
            for i in range(num_down_blocks)
        )
        self.up_blocks = nn.ModuleList(
            (up(widths[-1 - i], widths[-2 - i]) if up else UpBlock2d(widths[-1 - i], widths[-2 - i], 3, 1))
            for i in range(num_down_blocks)
        )
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            block = res(widths[-1]) if res else ResBlock2d(widths[-1], kernel_size=(3, 3), padding=(1, 1))
            self.bottleneck.add_module(f"r{i}", block)
        if mobile_net:
            self.final = three_conv_head(block_expansion, num_channels, padding=1, relu=True)
        else:
            self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.num_channels = num_channels
        self.align_corners = True
        self.paddle_inference = False  # PaddleGAN's border handling (see set_warp_border)

    def set_warp_border(self, mode: str) -> None:
        """"plain" = original FOMM; "paddlegan" = PaddleGAN's inference-mode border behaviour."""
        self.paddle_inference = mode == "paddlegan"

    def set_align_corners(self, value: bool) -> None:
        self.align_corners = value
        if self.dense_motion_network is not None:
            self.dense_motion_network.align_corners = value

    # -- pieces that depend on the source alone -------------------------------------------------------
    def encode_source(self, source_image: torch.Tensor) -> torch.Tensor:
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def prepare_source(self, source_image: torch.Tensor, kp_source: dict, dtype=torch.float32) -> dict:
        """Encoder features and dense-motion inputs of one source image, reused for every frame (or of
        a batch of source frames, each driven by the driving keypoints at the same place in the batch)."""
        x = source_image.to(dtype)
        # kept float32 and NCHW: the warp samples it in float32 (exact grids, and CPU bf16 grid_sample
        # on channels-last input is unreliable); the result is cast to the network dtype afterwards
        features = self.encode_source(x).float().contiguous()
        return {
            "features": features,
            "dtype": dtype,
            "motion": self.dense_motion_network.prepare_source(source_image.float(), kp_source),
            "image": source_image.float(),
        }

    # -- warping -------------------------------------------------------------------------------------
    def _resize_deformation(self, deformation: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if deformation.shape[1:3] != (h, w):
            deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear")
            deformation = deformation.permute(0, 2, 3, 1)
        if self.paddle_inference:
            blend = identity_blend_weight(h, w, device=deformation.device)
            identity = make_coordinate_grid(h, w, deformation.device).unsqueeze(0)
            deformation = blend * deformation + (1 - blend) * identity
        return deformation

    def warp_shared(self, image: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Warp one image [1, C, h, w] with a batch of deformations [B, H, W, 2] (or B images, one each)."""
        deformation = self._resize_deformation(deformation, *image.shape[2:])
        return sample_shared_input(image, deformation.to(image.dtype), self.align_corners)

    def _apply_occlusion(self, features: torch.Tensor, occlusion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if occlusion.shape[2:] != features.shape[2:]:
            occlusion = F.interpolate(occlusion, size=features.shape[2:], mode="bilinear")
        if self.paddle_inference and not self.mobile_net:
            b = OCCLUSION_BORDER
            occlusion = occlusion.clone()
            occlusion[:, :, :b, :] = 1
            occlusion[:, :, -b:, :] = 1
            occlusion[:, :, :, :b] = 1
            occlusion[:, :, :, -b:] = 1
        return features * occlusion.to(features.dtype), occlusion

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        out = self.bottleneck(features)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out).float())

    def generate(self, prepared: dict, kp_driving: dict, intermediates: bool = False) -> dict:
        """Frames [B, C, H, W] for a batch of driving keypoints against one prepared source."""
        dtype = prepared.get("dtype", prepared["features"].dtype)
        motion = self.dense_motion_network.forward_prepared(prepared["motion"], kp_driving, dtype)
        deformation = motion["deformation"]
        out = self.warp_shared(prepared["features"], deformation)
        result = {}
        if "occlusion_map" in motion:
            out, occlusion = self._apply_occlusion(out, motion["occlusion_map"])
            result["occlusion_map"] = occlusion
        result["prediction"] = self.decode(out.to(dtype))
        if intermediates:
            result["mask"] = motion["mask"]
            result["sparse_deformed"] = motion["sparse_deformed"]
            result["deformed"] = self.warp_shared(prepared["image"], deformation)
        return result

    def forward(self, source_image: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict:
        """The original call signature: one source (batch 1) against a batch of driving keypoints."""
        if source_image.shape[0] != 1:
            raise ValueError("forward() takes one source image; call it per source")
        return self.generate(self.prepare_source(source_image, kp_source), kp_driving, intermediates=True)
