"""Paste node: animated face crops back into the full picture (or frames, for chained face groups)."""

from __future__ import annotations

import numpy as np
from comfy_api.v0_0_2 import io

from .common import CATEGORY, FOMNodeError, engine_errors, progress_callback, to_image, to_numpy
from .types import FaceSet, FOMFacesType

COLOR_MATCH = ["off", "lab", "rgb"]


class FOMPasteFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMPasteFaces",
            display_name="FOM Paste Faces",
            category=CATEGORY,
            description="Paste the animated faces into the picture: a circle of radius ratio x crop height per "
                        "face. Give the output frames to a second paste to add another face group.",
            inputs=[
                io.Image.Input("image", tooltip="The original picture (1 image, used for every frame) or frames "
                                                "(T images) from an earlier paste."),
                FOMFacesType.Input("faces", tooltip="The faces that were animated, in the same order."),
                io.Image.Input("animated", tooltip="From FOM Transfer Motion: N x T crops, face-major."),
                io.Float.Input("ratio", default=0.4, min=0.1, max=1.0, step=0.01,
                               tooltip="Pasted circle radius as a fraction of the crop height (the seed uses 0.4)."),
                io.Float.Input("feather", default=-1.0, min=-1.0, max=256.0, step=1.0,
                               tooltip="Soft edge width in pixels; 0 = hard edge, -1 = automatic (10% of radius)."),
                io.Combo.Input("color_match", options=COLOR_MATCH, default="off",
                               tooltip="Match each pasted face's colours to the picture (per frame)."),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="Full-size frames, T images.")],
        )

    @classmethod
    def execute(cls, image, faces: FaceSet, animated, ratio, feather, color_match) -> io.NodeOutput:
        from fom_pipeline.faces import paste_faces

        n = len(faces)
        total = int(animated.shape[0])
        if n == 0 or total % n:
            raise FOMNodeError(f"FOMPasteFaces: {total} animated crops do not split evenly into {n} faces; "
                               "connect the same faces that went into FOM Transfer Motion")
        t = total // n
        base = to_numpy(image)
        if base.shape[0] not in (1, t):
            raise FOMNodeError(f"FOMPasteFaces: image has {base.shape[0]} frames but the animation has {t}; "
                               "give 1 picture or frames of the same length")
        anim = to_numpy(animated).reshape(n, t, *animated.shape[1:3], 3)
        chunk = 16
        progress = progress_callback(t)
        out = np.empty((t, *base.shape[1:3], 3), dtype=np.float32)
        with engine_errors("FOMPasteFaces"):
            for s in range(0, t, chunk):
                e = min(s + chunk, t)
                frames = base[0] if base.shape[0] == 1 else base[s:e]
                out[s:e] = paste_faces(frames, faces.records, anim[:, s:e], ratio=ratio,
                                       feather=None if feather < 0 else feather,
                                       color_match=False if color_match == "off" else color_match)
                progress(e, t)
        return io.NodeOutput(to_image(out))
