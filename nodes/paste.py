"""Paste node: animated faces back into the full picture (or into an earlier paste's video, to chain
face groups driven by different videos), as a VIDEO rendered when it is saved."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from .common import CATEGORY, FOMNodeError, engine_errors, to_numpy
from .types import FaceSet, FOMAnimationType, FOMFacesType
from .video import StreamedVideo, frame_source

COLOR_MATCH = ["off", "lab", "rgb"]


class FOMPasteFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMPasteFaces",
            display_name="FOM Paste Faces",
            category=CATEGORY,
            description="Paste the animated faces into the picture: a circle of radius ratio x crop height per "
                        "face. Streams: the video is computed batch by batch when it is saved (Save Video), so "
                        "any length fits in memory. Give its video to a second paste to add another face group.",
            inputs=[
                io.MultiType.Input(io.Image.Input("image", tooltip="The original picture (its first image is used "
                                                  "for every frame), or the video of an earlier paste."),
                                   types=[io.Image, io.Video]),
                FOMFacesType.Input("faces", tooltip="The faces that were animated, in the same order."),
                FOMAnimationType.Input("animation", tooltip="From FOM Transfer Motion: brings the frames, the "
                                                            "frame rate and the audio of the driving video."),
                io.Float.Input("ratio", default=0.4, min=0.1, max=1.0, step=0.01,
                               tooltip="Pasted circle radius as a fraction of the crop height (the seed uses 0.4)."),
                io.Float.Input("feather", default=-1.0, min=-1.0, max=256.0, step=1.0,
                               tooltip="Soft edge width in pixels; 0 = hard edge, -1 = automatic (10% of radius)."),
                io.Combo.Input("color_match", options=COLOR_MATCH, default="off",
                               tooltip="Match each pasted face's colours to the picture (per frame)."),
                io.Image.Input("edited_crops", optional=True,
                               tooltip="Optional: the animation's crops edited by other nodes (FOM Animation To "
                                       "Images -> e.g. a face restorer), N x T face-major; pasted instead of the "
                                       "animation, with its frame rate and audio. Holds every frame."),
            ],
            outputs=[io.Video.Output(display_name="video",
                                     tooltip="Full-size video with the driving video's frame rate and audio "
                                             "(computed when saved). Get Video Components gives its frames as "
                                             "IMAGE (holds every frame).")],
        )

    @classmethod
    def execute(cls, image, faces: FaceSet, animation, ratio, feather, color_match,
                edited_crops=None) -> io.NodeOutput:
        from fom_pipeline.pipeline import FramesAnimation, PastedFrames

        base = frame_source(image, "FOMPasteFaces") if not hasattr(image, "shape") else to_numpy(image)[0]
        with engine_errors("FOMPasteFaces"):
            if edited_crops is not None:
                animation = FramesAnimation(to_numpy(edited_crops), len(faces), animation.fps, animation.audio,
                                            animation.batch_size)
            elif len(faces) != animation.faces:
                raise FOMNodeError(f"FOMPasteFaces: the animation has {animation.faces} faces but {len(faces)} "
                                   "faces are connected; connect the same faces that went into FOM Transfer Motion")
            pasted = PastedFrames(base, faces.records, animation, ratio=ratio,
                                  feather=None if feather < 0 else feather,
                                  color_match=False if color_match == "off" else color_match)
        return io.NodeOutput(StreamedVideo(pasted, "FOMPasteFaces"))
