"""Loader nodes: the FOMM checkpoint and the face detector, each loaded once and reused across runs."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict

import folder_paths
from comfy_api.v0_0_2 import io

from .common import CATEGORY, FOMNodeError, comfy_device, engine_errors
from .types import FOMFaceDetectorType, FOMModelType, Loaded

log = logging.getLogger("fom_multiface")

DEVICES = ["auto", "cpu", "cuda", "mps"]
PRECISIONS = ["fp32", "bf16", "fp16"]
WARP_BORDERS = ["auto", "paddlegan", "plain"]
DETECTOR_BACKENDS = ["sfd", "blazeface"]
AUTO_WEIGHTS = "auto"


class _Cache:
    """A small LRU of loaded models, keyed by file identity and load options (ComfyUI's own output
    cache forgets a loader as soon as a prompt without it runs; this keeps the weights in memory)."""

    def __init__(self, size: int = 3):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get_or_load(self, key, load):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = load()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


MODEL_CACHE = _Cache()
DETECTOR_CACHE = _Cache()


def _file_key(path: str):
    st = os.stat(path)
    return os.path.realpath(path), st.st_mtime_ns, st.st_size


def _model_path(ckpt_name: str) -> str:
    path = folder_paths.get_full_path("fom", ckpt_name)
    if not path or not os.path.isfile(path):
        dirs = ", ".join(folder_paths.get_folder_paths("fom"))
        raise FOMNodeError(f"FOMLoadModel: checkpoint {ckpt_name!r} not found; put it in one of: {dirs}")
    return path


class FOMLoadModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMLoadModel",
            display_name="FOM Load Model",
            category=CATEGORY,
            description="Load a First Order Motion Model checkpoint (.pth.tar, .pdparams or .safetensors) "
                        "from the models/fom folder. Loaded once and kept for later runs.",
            inputs=[
                io.Combo.Input("ckpt_name", options=folder_paths.get_filename_list("fom"),
                               tooltip="Checkpoint file in ComfyUI/models/fom/ or this pack's models/fom/."),
                io.Combo.Input("device", options=DEVICES, default="auto",
                               tooltip="auto follows ComfyUI's device (honours --cpu); or force cpu/cuda/mps."),
                io.Combo.Input("precision", options=PRECISIONS, default="fp32",
                               tooltip="fp32 is exact; bf16/fp16 are faster on GPUs with little visible change."),
                io.Combo.Input("warp_border", options=WARP_BORDERS, default="auto",
                               tooltip="How warping treats the image border: auto picks paddlegan for PaddleGAN "
                                       "weights and plain (original FOMM) otherwise."),
            ],
            outputs=[FOMModelType.Output(display_name="model", tooltip="The loaded FOMM model.")],
        )

    @classmethod
    def validate_inputs(cls, ckpt_name):
        if not folder_paths.get_full_path("fom", ckpt_name):
            dirs = ", ".join(folder_paths.get_folder_paths("fom"))
            return f"checkpoint {ckpt_name!r} not found; put a FOMM checkpoint in one of: {dirs}"
        return True

    @classmethod
    def execute(cls, ckpt_name, device, precision, warp_border) -> io.NodeOutput:
        from fom_pipeline import load_model

        path = _model_path(ckpt_name)
        dev = comfy_device(device)
        key = (*_file_key(path), dev, precision, warp_border)

        def load():
            log.info("FOM: loading %s (device=%s, precision=%s, warp_border=%s)", ckpt_name, dev, precision,
                     warp_border)
            with engine_errors("FOMLoadModel"):
                return load_model(path, device=dev, precision=precision, warp_border=warp_border)

        model = MODEL_CACHE.get_or_load(key, load)  # load now, so a bad file fails in this node
        return io.NodeOutput(Loaded(key, load, MODEL_CACHE, {"image_size": model.image_size}))


class FOMLoadFaceDetector(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        files = [f for f in folder_paths.get_filename_list("face_detection") if not f.endswith(".npy")]
        return io.Schema(
            node_id="FOMLoadFaceDetector",
            display_name="FOM Load Face Detector",
            category=CATEGORY,
            description="Load a face detector (face-alignment's S3FD or BlazeFace) from models/face_detection.",
            inputs=[
                io.Combo.Input("backend", options=DETECTOR_BACKENDS, default="sfd",
                               tooltip="sfd: S3FD, accurate, finds small faces. blazeface: fast, needs "
                                       "blazeface.pth and anchors.npy."),
                io.Combo.Input("weights", options=[AUTO_WEIGHTS, *files], default=AUTO_WEIGHTS,
                               tooltip="Weights file in models/face_detection/. auto: the backend's usual file "
                                       "there (S3FD is downloaded once if missing)."),
                io.Combo.Input("device", options=DEVICES, default="auto",
                               tooltip="auto follows ComfyUI's device (honours --cpu)."),
            ],
            outputs=[FOMFaceDetectorType.Output(display_name="detector",
                                                          tooltip="The face detector.")],
        )

    @classmethod
    def execute(cls, backend, weights, device) -> io.NodeOutput:
        from fom_pipeline.faces import load_face_detector

        dev = comfy_device(device)
        weights_path = None
        if weights != AUTO_WEIGHTS:
            weights_path = folder_paths.get_full_path("face_detection", weights)
            if not weights_path:
                raise FOMNodeError(f"FOMLoadFaceDetector: weights {weights!r} not found in models/face_detection")
        key = (backend, _file_key(weights_path) if weights_path else None, dev)

        def load():
            log.info("FOM: loading face detector %s (%s, device=%s)", backend, weights, dev)
            with engine_errors("FOMLoadFaceDetector"):
                return load_face_detector(backend, weights_path=weights_path, models_dir=folder_paths.models_dir,
                                          device=dev)

        DETECTOR_CACHE.get_or_load(key, load)
        return io.NodeOutput(Loaded(key, load, DETECTOR_CACHE))

