"""Preview node: keypoints drawn on images, to check what the model sees in the driving video."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from .common import CATEGORY, FOMNodeError, to_image, to_numpy
from .draw import draw_keypoints
from .types import FOMKeypointsType


class FOMDrawKeypoints(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMDrawKeypoints",
            display_name="FOM Draw Keypoints",
            category=CATEGORY,
            description="Draw keypoints on images (one keypoint set per image, or one set for all).",
            inputs=[
                io.Image.Input("images", tooltip="Images the keypoints belong to (e.g. the driving crops)."),
                FOMKeypointsType.Input("keypoints", tooltip="From FOM Extract Keypoints."),
                io.Int.Input("radius", default=0, min=0, max=64,
                             tooltip="Dot radius in pixels; 0 picks one from the image size."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="The images with coloured keypoints.")],
        )

    @classmethod
    def execute(cls, images, keypoints, radius) -> io.NodeOutput:
        imgs = to_numpy(images)
        values = keypoints.value.detach().cpu().float().numpy()
        if len(values) == 1 and len(imgs) > 1:
            values = values.repeat(len(imgs), axis=0)
        if len(values) != len(imgs):
            raise FOMNodeError(f"FOMDrawKeypoints: {len(imgs)} images but {len(values)} keypoint sets")
        return io.NodeOutput(to_image(draw_keypoints(imgs, values, radius)))
