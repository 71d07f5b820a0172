"""Preview node: keypoints drawn on a few driving frames, to check what the model sees."""

from __future__ import annotations

import numpy as np
from comfy_api.v0_0_2 import io

from fom_pipeline.arrays import as_numpy

from .common import CATEGORY, FOMNodeError, check_interrupt, to_image
from .draw import draw_keypoints
from .types import FOMKeypointsType
from .video import frame_source


class FOMDrawKeypoints(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMDrawKeypoints",
            display_name="FOM Draw Keypoints",
            category=CATEGORY,
            description="Draw the keypoints on a few frames spread over the driving video (or on every frame).",
            inputs=[
                io.MultiType.Input(io.Video.Input("driving", tooltip="The frames the keypoints belong to: the "
                                                  "driving video (VIDEO, read a chunk at a time) or IMAGE frames."),
                                   types=[io.Video, io.Image]),
                FOMKeypointsType.Input("keypoints", tooltip="From FOM Extract Keypoints."),
                io.Int.Input("frames", default=8, min=0, max=10_000,
                             tooltip="How many frames to draw, evenly spread over the clip; 0 = every frame "
                                     "(holds them all: short clips only)."),
                io.Int.Input("radius", default=0, min=0, max=64,
                             tooltip="Dot radius in pixels; 0 picks one from the image size."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="The chosen frames with coloured keypoints.")],
        )

    @classmethod
    def execute(cls, driving, keypoints, frames, radius) -> io.NodeOutput:
        from fom_pipeline.streams import as_float

        values = as_numpy(keypoints.keypoints.value, np.float32)
        source = frame_source(driving, "FOMDrawKeypoints")
        count = min(len(values), source.frame_count or len(values))
        if len(values) != 1 and source.frame_count and abs(source.frame_count - len(values)) > 1:
            raise FOMNodeError(f"FOMDrawKeypoints: {source.frame_count} frames but {len(values)} keypoint sets; "
                               "connect the video the keypoints came from")
        wanted = set(range(count)) if frames == 0 else \
            {int(round(v)) for v in np.linspace(0, max(0, count - 1), min(frames, count))}
        picked, index = [], 0
        for chunk in source.chunks(16):
            check_interrupt()
            for i in range(len(chunk)):
                if index + i in wanted:
                    kp = values[0] if len(values) == 1 else values[min(index + i, len(values) - 1)]
                    picked.append(draw_keypoints(as_float(chunk[i : i + 1]), kp[None], radius)[0])
            index += len(chunk)
            if index > max(wanted, default=0):
                break
        if not picked:
            raise FOMNodeError("FOMDrawKeypoints: the driving video has no frames")
        return io.NodeOutput(to_image(np.stack(picked)))
