"""Paste node: animated faces back into the full picture (or into an earlier paste's video, to chain
face groups driven by different videos), as a VIDEO rendered when it is saved."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from fom_pipeline.arrays import as_numpy
from fom_pipeline.options import DEFAULT_RATIO, RATIO_RANGE, PasteOptions
from fom_pipeline.video_source import AUDIO_CHOICES, pick_audio

from .common import CATEGORY, FOMNodeError, check_interrupt, engine_errors, to_numpy
from .types import FaceSet, FOMAnimationType, FOMFacesType, Loaded
from .video import StreamedVideo, frame_source

COLOR_MATCH = ["off", "lab", "rgb"]


def restorer(model, running=()):
    """ComfyUI's UPSCALE_MODEL (a spandrel descriptor) as the engine's FaceRestorer, on ComfyUI's device:
    through its model management where the model carries a patcher (newer ComfyUI), else moved there
    after asking ComfyUI to free room, and back to the CPU when the render ends. Cancel stops it.
    ``running``: the Loaded handles whose networks this render is running, loaded together with the
    restorer so that making room for it never moves them off the GPU mid-render."""
    import comfy.model_management as mm

    from fom_pipeline.restore import FaceRestorer

    patcher = getattr(model, "patcher", None)
    if patcher is not None:
        device = patcher.load_device

        def start() -> None:
            in_use = [handle.patcher for handle in running if handle.patcher is not None]
            mm.load_models_gpu([patcher, *in_use], force_full_load=True)
    else:
        device = mm.get_torch_device()

        def start() -> None:
            mm.free_memory(mm.module_size(model.model), device)

    return FaceRestorer(model, device=device, interrupt=check_interrupt, on_start=start)


def _running(animation) -> list[Loaded]:
    """The model handle a FaceAnimation computes with (its model is a bound ``Loaded.get``), if any."""
    handle = getattr(getattr(animation, "model", None), "__self__", None)
    return [handle] if isinstance(handle, Loaded) else []


class FOMPasteFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMPasteFaces",
            display_name="FOM Paste Faces",
            category=CATEGORY,
            description="Paste the animated faces into the picture: a circle of radius ratio x crop height per "
                        "face, or where an optional mask is; an optional face restoration model restores each "
                        "face as it is pasted. Streams: the video is computed batch by batch when it is saved "
                        "(Save Video), so any length fits in memory. Give its video to a second paste to add "
                        "another face group.",
            inputs=[
                io.MultiType.Input(io.Image.Input("image", tooltip="The original picture or source VIDEO, or an "
                                                  "earlier paste: its video, or its frames as IMAGE (one per output "
                                                  "frame)."),
                                   types=[io.Image, io.Video]),
                FOMFacesType.Input("faces", tooltip="The faces that were animated, in the same order."),
                FOMAnimationType.Input("animation", tooltip="From FOM Transfer Motion: brings the frames, the "
                                                            "frame rate and the audio of the driving video."),
                io.Float.Input("ratio", default=DEFAULT_RATIO, min=RATIO_RANGE[0], max=RATIO_RANGE[1], step=0.01,
                               tooltip="Pasted circle radius as a fraction of the crop height (PaddleGAN's demo uses 0.4)."),
                io.Float.Input("feather", default=-1.0, min=-1.0, max=256.0, step=1.0,
                               tooltip="Soft edge width in pixels; 0 = hard edge, -1 = automatic (10% of radius)."),
                io.Combo.Input("color_match", options=COLOR_MATCH, default="off",
                               tooltip="Match each pasted face's colours to the picture (per frame)."),
                io.Combo.Input("audio", options=list(AUDIO_CHOICES), default="source", optional=True,
                               tooltip="Faces of a source video: keep the source video's sound, take the driving "
                                       "video's, or none. (A picture's result has the driving video's.)"),
                io.Image.Input("edited_crops", optional=True,
                               tooltip="Optional: the animation's crops edited by other nodes (FOM Animation To "
                                       "Images -> e.g. a face restorer), N x T face-major; pasted instead of the "
                                       "animation, with its frame rate and audio. Holds every frame."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional: where to paste, the size of the picture (painted in Load Image's "
                                      "mask editor, or from a segmentation node). Replaces the circle of every "
                                      "face it covers (on in the middle of the face's box), feathered like the "
                                      "circle; other faces keep their circle. For a source video: one mask for "
                                      "every frame, or a batch with one mask per frame."),
                io.UpscaleModel.Input("restore_model", optional=True,
                                      tooltip="Optional: a face restoration model from Load Upscale Model (GFPGAN, "
                                              "RestoreFormer, ...) run on each batch of animated faces while the "
                                              "video renders (face restorers at 512 px), then resized back to the "
                                              "crop. Streams: never holds every frame."),
            ],
            outputs=[io.Video.Output(display_name="video",
                                     tooltip="Full-size video with the driving video's frame rate and audio "
                                             "(computed when saved). Get Video Components gives its frames as "
                                             "IMAGE (holds every frame).")],
        )

    @classmethod
    def execute(cls, image, faces: FaceSet, animation, ratio, feather, color_match, audio="source",
                edited_crops=None, mask=None, restore_model=None) -> io.NodeOutput:
        from fom_pipeline.pipeline import FramesAnimation, PastedFrames

        # one image is the still picture; a batch (an earlier paste's frames as IMAGE) is one background per frame
        still = hasattr(image, "shape") and image.shape[0] == 1
        base = to_numpy(image)[0] if still else frame_source(image, "FOMPasteFaces", fps=animation.fps)
        with engine_errors("FOMPasteFaces"):
            if edited_crops is not None:
                animation = FramesAnimation(to_numpy(edited_crops), len(faces), animation.fps, animation.audio,
                                            animation.batch_size)
            elif len(faces) != animation.faces:
                raise FOMNodeError(f"FOMPasteFaces: the animation has {animation.faces} faces but {len(faces)} "
                                   "faces are connected; connect the same faces that went into FOM Transfer Motion")
            options = PasteOptions(ratio=ratio, feather=None if feather < 0 else feather,
                                   color_match=False if color_match == "off" else color_match)
            pasted = PastedFrames(base, faces.records if faces.tracks is None else faces.tracks, animation, options,
                                  mask=None if mask is None else as_numpy(mask),
                                  restore=None if restore_model is None else restorer(restore_model,
                                                                                      _running(animation)))
            if faces.tracks is not None:  # onto the source video: its sound, the driver's or none
                driving = getattr(animation, "driving", None)
                pasted.audio = pick_audio(audio, faces.video.audio, driving.audio if driving else None)
        return io.NodeOutput(StreamedVideo(pasted, "FOMPasteFaces"))
