"""Loader nodes: the FOMM checkpoint and the face detector, each loaded once and reused across runs.

The loaded networks live in ``model_cache``, not in ComfyUI's output cache (which only keeps small
``Loaded`` handles), each under a ComfyUI ModelPatcher (``managed_models``): ComfyUI's model
management loads, offloads and unloads them like its own models. ``fingerprint_inputs`` gives ComfyUI the chosen file's identity (path,
modification time, size), so a file replaced under the same name runs the loader again and the new
weights are loaded.
"""

from __future__ import annotations

import logging
import os

import folder_paths
from comfy_api.v0_0_2 import io

from fom_pipeline import weights
from fom_pipeline.faces.detect import BACKENDS
from fom_pipeline.model import PRECISIONS as ENGINE_PRECISIONS
from fom_pipeline.model import WARP_BORDERS as ENGINE_WARP_BORDERS

from .common import CATEGORY, FOMNodeError, comfy_device, engine_errors
from .downloads import download_release
from .managed_models import FaceDetectorNetwork, FOMNetworks, detector_modules, fom_modules, managed
from .model_cache import DETECTOR_CACHE, MODEL_CACHE, file_fingerprint, file_key
from .types import FOMFaceDetectorType, FOMModelType, Loaded

log = logging.getLogger("fom_multiface")

DEVICES = ["auto", "cpu", "cuda", "mps"]
# "auto": the engine picks what the device runs fast (load_model(precision="auto")).
PRECISIONS = list(dict.fromkeys(["auto", *ENGINE_PRECISIONS]))
WARP_BORDERS = list(ENGINE_WARP_BORDERS)
DETECTOR_BACKENDS = list(BACKENDS)
AUTO_WEIGHTS = "auto"
# PaddleGAN's releases, offered by name even before they are on disk (picking one downloads it).
RELEASE_NAMES = [weights.KNOWN_WEIGHTS[key].filename for key in weights.FOM_RELEASES]
# Face-detector weights files the backends read (anchors.npy is BlazeFace's companion, not weights).
DETECTOR_EXTENSIONS = (".pth", ".pt", ".safetensors")


def _model_options() -> list[str]:
    """PaddleGAN's three releases (downloaded when picked), then every file in the fom folders."""
    return list(dict.fromkeys([*RELEASE_NAMES, *folder_paths.get_filename_list("fom")]))


def _release(ckpt_name: str) -> str | None:
    key = weights.release_key(ckpt_name)
    return key if key in weights.FOM_RELEASES else None


def _find_model(ckpt_name: str) -> str | None:
    path = folder_paths.get_full_path("fom", ckpt_name)
    if path and os.path.isfile(path):
        return path
    key = _release(ckpt_name)
    if key is not None:  # the release converted (vox-cpk.safetensors), or its other spelling (vox_mobile.pdparams)
        found = weights.find_release(key, folder_paths.get_folder_paths("fom"))
        if found is not None:
            return str(found)
    return None


def _model_path(ckpt_name: str) -> str:
    path = _find_model(ckpt_name)
    if path is not None:
        return path
    key = _release(ckpt_name)
    if key is not None:
        return download_release(key)
    dirs = ", ".join(folder_paths.get_folder_paths("fom"))
    raise FOMNodeError(f"FOMLoadModel: checkpoint {ckpt_name!r} not found; put it in one of: {dirs}")


class FOMLoadModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMLoadModel",
            display_name="FOM Load Model",
            category=CATEGORY,
            description="Load a First Order Motion Model checkpoint (.pth.tar, .pdparams or .safetensors) "
                        "from the models/fom folder. PaddleGAN's releases are downloaded there the first "
                        "time they are picked. Loaded once and kept for later runs.",
            inputs=[
                io.Combo.Input("ckpt_name", options=_model_options(),
                               tooltip="Checkpoint file in ComfyUI/models/fom/ or this pack's models/fom/. "
                                       "PaddleGAN's vox-cpk.pdparams (256 px), vox-cpk-512.pdparams (512 px) and "
                                       "vox-mobile.pdparams are always offered: a missing one is downloaded once "
                                       "into ComfyUI/models/fom/."),
                io.Combo.Input("device", options=DEVICES, default="auto",
                               tooltip="auto follows ComfyUI's device (honours --cpu); or force cpu/cuda/mps."),
                io.Combo.Input("precision", options=PRECISIONS, default="auto",
                               tooltip="auto picks what the device runs fast. fp32 is exact; bf16/fp16 are faster "
                                       "on GPUs with little visible change."),
                io.Combo.Input("warp_border", options=WARP_BORDERS, default="auto",
                               tooltip="How warping treats the image border: auto picks paddlegan for PaddleGAN "
                                       "weights and plain (original FOMM) otherwise."),
                io.Int.Input("image_size", default=0, min=0, max=4096, step=64,
                             tooltip="Crop size the model runs at: the size it was trained at. 0 = auto: the "
                                     "size stored in the file (our .safetensors) or written in its name "
                                     "(vox-cpk-512, model-384), else 256. The released models need a multiple "
                                     "of 128."),
            ],
            outputs=[FOMModelType.Output(display_name="model", tooltip="The loaded FOMM model.")],
        )

    @classmethod
    def validate_inputs(cls, ckpt_name):
        if _release(ckpt_name) is None and not folder_paths.get_full_path("fom", ckpt_name):
            dirs = ", ".join(folder_paths.get_folder_paths("fom"))
            return f"checkpoint {ckpt_name!r} not found; put a FOMM checkpoint in one of: {dirs}"
        return True

    @classmethod
    def fingerprint_inputs(cls, ckpt_name, **_options):
        return file_fingerprint(_find_model(ckpt_name))

    @classmethod
    def execute(cls, ckpt_name, device, precision, warp_border, image_size=0) -> io.NodeOutput:
        from fom_pipeline import load_model

        path = _model_path(ckpt_name)
        dev = comfy_device(device, "FOMLoadModel")
        size = int(image_size) or None
        key = (*file_key(path), dev, precision, warp_border, size)

        def load():
            log.info("FOM: loading %s (device=%s, precision=%s, warp_border=%s, image_size=%s)", ckpt_name, dev,
                     precision, warp_border, size or "auto")
            with engine_errors("FOMLoadModel"):
                loaded = load_model(path, device=dev, precision=precision, warp_border=warp_border,
                                    image_size=size, accelerator_precision=comfy_precision)
            log.info("FOM: %s runs in %s (%s)", ckpt_name, loaded.precision, loaded.precision_reason)
            return managed(loaded, fom_modules(loaded), FOMNetworks)

        model = MODEL_CACHE.get_or_load(key, load).value  # load now, so a bad file fails in this node
        return io.NodeOutput(Loaded(key, load, MODEL_CACHE, {"image_size": model.image_size}))


def comfy_precision(device) -> str:
    """What ComfyUI's model management runs well on a GPU/MPS device (it honours --force-fp32 and the like):
    the answer behind precision "auto" off the CPU."""
    import comfy.model_management as mm

    if mm.should_use_bf16(device):
        return "bf16"
    return "fp16" if mm.should_use_fp16(device) else "fp32"


def _detector_files() -> list[str]:
    """Weights files the backends can read: .pth/.pt/.safetensors (never anchors.npy)."""
    return [f for f in folder_paths.get_filename_list("face_detection") if f.lower().endswith(DETECTOR_EXTENSIONS)]


def _is_blazeface_file(name: str) -> bool:
    return "blazeface" in os.path.basename(name).lower()


def _picked_detector_file(weights_name: str) -> str | None:
    """The file picked in the node's weights list (None for auto, or when it is not there)."""
    if weights_name == AUTO_WEIGHTS:
        return None
    return folder_paths.get_full_path("face_detection", weights_name) or None


def _detector_file(backend: str, picked: str | None):
    """The file the detector loads from, if it is on disk (auto: the backend's usual file)."""
    from fom_pipeline.faces import find_detector_weights

    return find_detector_weights(backend, picked, folder_paths.models_dir)


class FOMLoadFaceDetector(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMLoadFaceDetector",
            display_name="FOM Load Face Detector",
            category=CATEGORY,
            description="Load a face detector (face-alignment's S3FD or BlazeFace) from models/face_detection.",
            inputs=[
                io.Combo.Input("backend", options=DETECTOR_BACKENDS, default="sfd",
                               tooltip="sfd: S3FD, accurate, finds small faces. blazeface: fast, needs "
                                       "blazeface.pth and anchors.npy."),
                io.Combo.Input("weights", options=[AUTO_WEIGHTS, *_detector_files()], default=AUTO_WEIGHTS,
                               tooltip="Weights file in models/face_detection/ (.pth, .pt or .safetensors; "
                                       "BlazeFace files have 'blazeface' in their name). auto: the backend's "
                                       "usual file there (S3FD is downloaded once if missing)."),
                io.Combo.Input("device", options=DEVICES, default="auto",
                               tooltip="auto follows ComfyUI's device (honours --cpu)."),
            ],
            outputs=[FOMFaceDetectorType.Output(display_name="detector",
                                                          tooltip="The face detector.")],
        )

    @classmethod
    def validate_inputs(cls, backend, weights):
        if weights == AUTO_WEIGHTS:
            return True
        if not weights.lower().endswith(DETECTOR_EXTENSIONS) or not folder_paths.get_full_path("face_detection",
                                                                                              weights):
            return (f"face detector weights {weights!r} not found; put a .pth, .pt or .safetensors file in "
                    "models/face_detection/ or pick auto")
        if backend == "blazeface" and not _is_blazeface_file(weights):
            return f"{weights!r} is not BlazeFace weights; pick blazeface.pth (anchors.npy beside it) or use sfd"
        if backend == "sfd" and _is_blazeface_file(weights):
            return f"{weights!r} is BlazeFace weights; pick the blazeface backend or S3FD weights for sfd"
        return True

    @classmethod
    def fingerprint_inputs(cls, backend, weights, **_options):
        picked = _picked_detector_file(weights)
        if picked is None and weights != AUTO_WEIGHTS:
            return None
        return file_fingerprint(_detector_file(backend, picked))

    @classmethod
    def execute(cls, backend, weights, device) -> io.NodeOutput:
        from fom_pipeline.faces import load_face_detector

        dev = comfy_device(device, "FOMLoadFaceDetector")
        weights_path = _picked_detector_file(weights)
        if weights_path is None and weights != AUTO_WEIGHTS:
            raise FOMNodeError(f"FOMLoadFaceDetector: weights {weights!r} not found in models/face_detection")
        found = _detector_file(backend, weights_path)  # None: S3FD is downloaded by the load
        key = (backend, file_key(found) if found is not None else None, dev)

        def load():
            log.info("FOM: loading face detector %s (%s, device=%s)", backend, weights, dev)
            with engine_errors("FOMLoadFaceDetector"):
                detector = load_face_detector(backend, weights_path=weights_path, models_dir=folder_paths.models_dir,
                                              device=dev)
            return managed(detector, detector_modules(detector), FaceDetectorNetwork)

        DETECTOR_CACHE.get_or_load(key, load)
        return io.NodeOutput(Loaded(key, load, DETECTOR_CACHE))
