"""Motion nodes: driving keypoints (once per video), motion transfer onto face crops (lazy), and the
animation as IMAGE or VIDEO."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from fom_pipeline.options import AnimationOptions
from fom_pipeline.streams import retime

from .common import CATEGORY, FOMNodeError, engine_errors, progress_callback, to_image
from .types import FaceSet, FOMAnimationType, FOMFacesType, FOMKeypointsType, FOMModelType
from .video import StreamedVideo, frame_source

REFERENCES = ["first", "index", "best"]
JACOBIAN = ["auto", "on", "off"]
SMOOTH_TOOLTIP = ("Smooth the keypoints over about this many frames without delaying them (0 = off). 3-8 calms "
                  "jittery motion; more also softens quick moves.")


def smooth_input(optional: bool = False) -> io.Int.Input:
    """The ``smooth`` input FOM Extract Keypoints and FOM Load Motion share (one range, one tooltip)."""
    return io.Int.Input("smooth", default=0, min=0, max=60, optional=optional, tooltip=SMOOTH_TOOLTIP)


class FOMExtractKeypoints(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMExtractKeypoints",
            display_name="FOM Extract Keypoints",
            category=CATEGORY,
            description="Keypoints of every driving frame, computed once and shared by every face it drives. "
                        "A VIDEO is read a chunk at a time (any length); its frame rate and audio go on to the "
                        "animation.",
            inputs=[
                FOMModelType.Input("model", tooltip="From FOM Load Model."),
                io.MultiType.Input(io.Video.Input("driving", tooltip="The driving video, already face crops "
                                                  "(Load Video, or FOM Crop Driving Video); or frames as an IMAGE "
                                                  "batch (holds every frame). Resized to the model size."),
                                   types=[io.Video, io.Image]),
                io.Int.Input("batch_size", default=32, min=1, max=512,
                             tooltip="Frames per forward pass; lower it if memory runs out."),
                io.Float.Input("fps", default=0.0, min=0.0, max=240.0, optional=True, force_input=True,
                               tooltip="Frame rate of the animation. 0: a VIDEO's own (as a player shows it; "
                                       "variable-rate phone clips are taken at their real times), 25 for IMAGE "
                                       "frames. Above 0: the rate of IMAGE frames (e.g. Get Video Components' "
                                       "fps), or the rate a VIDEO is re-timed to (frames repeated or skipped, "
                                       "same length in seconds)."),
                smooth_input(optional=True),
            ],
            outputs=[FOMKeypointsType.Output(display_name="keypoints",
                                             tooltip="Keypoints of each frame, with the video's frame rate "
                                                     "and audio.")],
        )

    @classmethod
    def execute(cls, model, driving, batch_size, fps=0.0, smooth=0) -> io.NodeOutput:
        from fom_pipeline.pipeline import driving_keypoints

        source = frame_source(driving, "FOMExtractKeypoints", fps=fps)
        with engine_errors("FOMExtractKeypoints"):
            source = retime(source, fps)  # IMAGE frames already have this rate: unchanged
            kp = driving_keypoints(model.get(), source, batch_size=batch_size,
                                   progress=progress_callback(max(1, source.frame_count)))
        return io.NodeOutput(kp.smoothed(smooth))


class FOMTransferMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMTransferMotion",
            display_name="FOM Transfer Motion",
            category=CATEGORY,
            description="Animate each face with the driving keypoints. Streams: the output is an animation "
                        "recipe, computed batch by batch when FOM Paste Faces' video is saved, so any video "
                        "length fits in memory.",
            inputs=[
                FOMModelType.Input("model", tooltip="From FOM Load Model."),
                io.MultiType.Input(FOMFacesType.Input("source", tooltip="The faces to animate (FOM Detect Faces, "
                                                      "FOM Faces From Boxes, FOM Select Faces; faces of a VIDEO "
                                                      "are animated from each of its frames); or face crops as "
                                                      "an IMAGE batch, e.g. a portrait that is already a crop."),
                                   types=[FOMFacesType, io.Image]),
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
            outputs=[FOMAnimationType.Output(display_name="animation",
                                             tooltip="The animated faces, computed when consumed (streams). "
                                                     "For FOM Paste Faces, FOM Animation To Video, or FOM "
                                                     "Animation To Images.")],
        )

    @classmethod
    def execute(cls, model, source, driving_keypoints, relative, relative_jacobian, adapt_scale,
                reference_frame, reference_index, batch_size) -> io.NodeOutput:
        from fom_pipeline.pipeline import FaceAnimation

        size = int(model.info.get("image_size") or model.get().image_size)
        ref = {"first": 0, "best": "best"}.get(reference_frame, int(reference_index))
        jac = {"auto": None, "on": True, "off": False}[relative_jacobian]
        with engine_errors("FOMTransferMotion"):
            options = AnimationOptions(relative=relative, adapt_scale=adapt_scale, relative_jacobian=jac,
                                       reference_frame=ref)
            if isinstance(source, FaceSet) and source.tracks is not None:  # faces of a video, frame by frame
                from fom_pipeline.video_source import VideoFaceAnimation

                return io.NodeOutput(VideoFaceAnimation(model.get, source.video, source.tracks, driving_keypoints,
                                                        options, batch_size=batch_size, size=size))
            crops = source.crops_for(size) if isinstance(source, FaceSet) else source
            if len(crops) == 0:
                raise FOMNodeError("FOMTransferMotion: no source faces")
            animation = FaceAnimation(model.get, crops, driving_keypoints, options, batch_size=batch_size, size=size)
        return io.NodeOutput(animation)


class FOMAnimationToImages(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMAnimationToImages",
            display_name="FOM Animation To Images",
            category=CATEGORY,
            description="Compute the whole animation as one IMAGE batch, face-major (all frames of face 1, then "
                        "face 2, ...), to edit the crops with other nodes (e.g. a face restorer) and give them "
                        "back to FOM Paste Faces' edited_crops. Holds every frame in memory: short clips only.",
            inputs=[FOMAnimationType.Input("animation", tooltip="From FOM Transfer Motion.")],
            outputs=[io.Image.Output(display_name="images", tooltip="N x T animated crops, face-major.")],
        )

    @classmethod
    def execute(cls, animation) -> io.NodeOutput:
        progress = progress_callback(max(1, animation.frame_count))
        with engine_errors("FOMAnimationToImages"):
            frames = animation.frames(progress=progress)
        return io.NodeOutput(to_image(frames.reshape(-1, *frames.shape[2:])))


class FOMAnimationToVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMAnimationToVideo",
            display_name="FOM Animation To Video",
            category=CATEGORY,
            description="One animated face crop as a VIDEO (for a portrait that is already a face crop), with the "
                        "driving video's frame rate and audio. Streams: frames are computed as the video is saved.",
            inputs=[
                FOMAnimationType.Input("animation", tooltip="From FOM Transfer Motion."),
                io.Int.Input("face", default=1, min=1, max=256, tooltip="Which face, 1-based as in the preview."),
            ],
            outputs=[io.Video.Output(display_name="video", tooltip="The animated crop (computed when saved).")],
        )

    @classmethod
    def execute(cls, animation, face) -> io.NodeOutput:
        from fom_pipeline.pipeline import AnimatedFace

        if not 1 <= face <= animation.faces:
            raise FOMNodeError(f"FOMAnimationToVideo: face {face} is out of range; the animation has "
                               f"{animation.faces} faces (1..{animation.faces})")
        return io.NodeOutput(StreamedVideo(AnimatedFace(animation, face - 1), "FOMAnimationToVideo"))
