"""Motion nodes: driving keypoints (once per video) and motion transfer onto face crops."""

from __future__ import annotations

import torch
from comfy_api.v0_0_2 import io

from .common import CATEGORY, FOMNodeError, engine_errors, progress_callback, to_image
from .types import FOMKeypointsType, FOMModelType

REFERENCES = ["first", "index", "best"]
JACOBIAN = ["auto", "on", "off"]


class FOMExtractKeypoints(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMExtractKeypoints",
            display_name="FOM Extract Keypoints",
            category=CATEGORY,
            description="Keypoints of every driving frame, computed once and shared by every face it drives.",
            inputs=[
                FOMModelType.Input("model", tooltip="From FOM Load Model."),
                io.Image.Input("images", tooltip="Driving frames, already face crops (resized to the model size)."),
                io.Int.Input("batch_size", default=32, min=1, max=512,
                             tooltip="Frames per forward pass; lower it if memory runs out."),
            ],
            outputs=[FOMKeypointsType.Output(display_name="keypoints", tooltip="Keypoints of each frame.")],
        )

    @classmethod
    def execute(cls, model, images, batch_size) -> io.NodeOutput:
        progress = progress_callback(images.shape[0])
        with engine_errors("FOMExtractKeypoints"):
            kp = model.get().extract_keypoints(images, batch_size=batch_size, progress=progress)
        return io.NodeOutput(kp)


class FOMTransferMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMTransferMotion",
            display_name="FOM Transfer Motion",
            category=CATEGORY,
            description="Animate each face crop with the driving keypoints. Output: one IMAGE batch, face-major "
                        "(all frames of face 1, then face 2, ...), N x T frames at the model size.",
            inputs=[
                FOMModelType.Input("model", tooltip="From FOM Load Model."),
                io.Image.Input("source", tooltip="Face crops to animate (N images), e.g. the crops of FOM Detect "
                                                 "Faces, or a portrait that is already a face crop."),
                FOMKeypointsType.Input("driving_keypoints", tooltip="From FOM Extract Keypoints."),
                io.Boolean.Input("relative", default=True,
                                 tooltip="Move keypoints relative to the reference frame (keeps each face's shape)."),
                io.Combo.Input("relative_jacobian", options=JACOBIAN, default="auto",
                               tooltip="Apply the jacobians relatively too; auto follows relative."),
                io.Boolean.Input("adapt_scale", default=True,
                                 tooltip="Scale the motion by the ratio of face sizes (source vs driving)."),
                io.Combo.Input("reference_frame", options=REFERENCES, default="first",
                               tooltip="Driving frame the face's pose is matched to: the first, the one at "
                                       "reference_index, or the best match to each face."),
                io.Int.Input("reference_index", default=0, min=0, max=1_000_000,
                             tooltip="Driving frame index used when reference_frame is 'index'."),
                io.Int.Input("batch_size", default=8, min=1, max=256,
                             tooltip="Frames per forward pass; lower it if memory runs out."),
            ],
            outputs=[io.Image.Output(display_name="animated",
                                     tooltip="Animated crops, face-major: N x T images.")],
        )

    @classmethod
    def execute(cls, model, source, driving_keypoints, relative, relative_jacobian, adapt_scale,
                reference_frame, reference_index, batch_size) -> io.NodeOutput:
        n, t = int(source.shape[0]), len(driving_keypoints)
        if n == 0:
            raise FOMNodeError("FOMTransferMotion: no source face crops")
        ref = {"first": 0, "best": "best"}.get(reference_frame, int(reference_index))
        jac = {"auto": None, "on": True, "off": False}[relative_jacobian]
        frames = []
        model = model.get()
        bar = progress_callback(t, node_total=n * t)
        with engine_errors("FOMTransferMotion"):
            for i in range(n):
                def progress(done, total, _offset=i * t):
                    bar(_offset + done, total)

                frames += list(model.animate_batches(source[i:i + 1], driving_keypoints, relative=relative,
                                                     adapt_scale=adapt_scale, relative_jacobian=jac,
                                                     reference_frame=ref, batch_size=batch_size,
                                                     progress=progress))
        return io.NodeOutput(to_image(torch.cat(frames)))
