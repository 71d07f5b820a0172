"""Motion files in ComfyUI: save a driving video's keypoints once (FOM Save Motion, into the output
folder) and drive faces with them later or on another machine without the video (FOM Load Motion,
from input/ or models/fom_motion/). The files are fom_pipeline.motion_file's small .safetensors."""

from __future__ import annotations

import os

import folder_paths
from comfy_api.v0_0_2 import io

from .common import CATEGORY, FOMNodeError, engine_errors
from .model_cache import file_fingerprint
from .motion import smooth_input
from .types import FOMKeypointsType, FOMModelType

MOTION_FOLDER = "fom_motion"  # models/fom_motion/, registered in common.FOLDER_EXTENSIONS


def _input_motion_files() -> list[str]:
    """Motion files anywhere under ComfyUI's input/ (checked by their header: input/ holds anything)."""
    from fom_pipeline.motion_file import SUFFIX, is_motion_file

    root = folder_paths.get_input_directory()
    names, _ = folder_paths.recursive_search(root, excluded_dir_names=[".git"])
    return [n for n in folder_paths.filter_files_extensions(names, [SUFFIX]) if is_motion_file(os.path.join(root, n))]


def motion_file_names() -> list[str]:
    """Names FOM Load Motion offers: models/fom_motion/ first, then input/ (a name in both means the first)."""
    registered = folder_paths.get_filename_list(MOTION_FOLDER) if MOTION_FOLDER in folder_paths.folder_names_and_paths \
        else []  # the folder is registered when the pack loads
    return sorted(dict.fromkeys([*registered, *_input_motion_files()]))


def motion_file_path(name: str) -> str | None:
    path = folder_paths.get_full_path(MOTION_FOLDER, name) if MOTION_FOLDER in folder_paths.folder_names_and_paths \
        else None
    if path:
        return path
    root = os.path.abspath(folder_paths.get_input_directory())
    path = os.path.abspath(os.path.join(root, name))
    return path if os.path.commonpath([root, path]) == root and os.path.isfile(path) else None


class FOMSaveMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMSaveMotion",
            display_name="FOM Save Motion",
            category=CATEGORY,
            description="Save driving keypoints as a small motion file (.safetensors: keypoints, jacobians, fps, "
                        "the clip's name) in ComfyUI's output folder. Put it in input/ or models/fom_motion/ "
                        "and FOM Load Motion drives faces with it, here or on another machine, without the video.",
            inputs=[
                FOMKeypointsType.Input("keypoints", tooltip="From FOM Extract Keypoints (saved as they come, "
                                                            "smoothed if they were)."),
                io.String.Input("filename_prefix", default="fom_motion/motion",
                                tooltip="File name start in the output folder; a counter and .safetensors follow."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, keypoints, filename_prefix) -> io.NodeOutput:
        from fom_pipeline.motion_file import SUFFIX, save_motion

        out_dir = folder_paths.get_output_directory()
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, out_dir)
        while os.path.exists(os.path.join(folder, f"{name}_{counter:05}_{SUFFIX}")):
            counter += 1
        filename = f"{name}_{counter:05}_{SUFFIX}"
        with engine_errors("FOMSaveMotion"):
            save_motion(os.path.join(folder, filename), keypoints)
        return io.NodeOutput(ui={"motion_files": [{"filename": filename, "subfolder": subfolder, "type": "output",
                                                   "frames": len(keypoints), "fps": keypoints.fps,
                                                   "clip": keypoints.name}]})


class FOMLoadMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMLoadMotion",
            display_name="FOM Load Motion",
            category=CATEGORY,
            description="Driving keypoints from a motion file (FOM Save Motion, or the command line's "
                        "--save_motion) in input/ or models/fom_motion/: the same motion without the video. "
                        "The file must come from the same model; a broken or foreign file is refused.",
            inputs=[
                FOMModelType.Input("model", tooltip="The model the motion drives (the one that made it)."),
                io.Combo.Input("motion", options=motion_file_names(),
                               tooltip="Motion files in input/ and models/fom_motion/."),
                smooth_input(),
                io.Audio.Input("audio", optional=True, tooltip="Sound for the animation (e.g. Load Audio); a motion "
                                                               "file has none."),
            ],
            outputs=[FOMKeypointsType.Output(display_name="keypoints",
                                             tooltip="For FOM Transfer Motion, with the file's frame rate.")],
        )

    @classmethod
    def fingerprint_inputs(cls, motion, **_options):
        """The file's identity, like the loaders: a motion file replaced under the same name is read again."""
        return file_fingerprint(motion_file_path(motion))

    @classmethod
    def execute(cls, model, motion, smooth, audio=None) -> io.NodeOutput:
        from fom_pipeline.motion_file import check_motion_model, load_motion

        from .video import wav_track

        path = motion_file_path(motion)
        if path is None:
            raise FOMNodeError(f"FOMLoadMotion: motion file {motion!r} is not in input/ or models/fom_motion/; "
                               "put it there and refresh")
        with engine_errors("FOMLoadMotion"):
            driving = load_motion(path)
            check_motion_model(driving, model.get(), f"motion file {motion}")
            driving = driving.smoothed(smooth)
        if audio is not None:
            driving.audio = wav_track(audio, driving)
        return io.NodeOutput(driving)
