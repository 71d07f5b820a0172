"""Loader nodes: the FOMM checkpoint and the face detector, each loaded once and reused across runs.

The loaded networks live in this module's caches, not in ComfyUI's output cache (which only keeps
small ``Loaded`` handles). The caches give their models back when the user asks ComfyUI to free
memory (``POST /free`` with ``unload_models``, the editor's "unload models") and when ComfyUI's model
management needs room on a device: see ``install_memory_hooks``.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import os
import sys
import threading
from collections import OrderedDict

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_api.v0_0_2 import io

from fom_pipeline import weights

from .common import CATEGORY, FOMNodeError, comfy_device, engine_errors
from .types import FOMFaceDetectorType, FOMModelType, Loaded

log = logging.getLogger("fom_multiface")

DEVICES = ["auto", "cpu", "cuda", "mps"]
PRECISIONS = ["fp32", "bf16", "fp16"]
WARP_BORDERS = ["auto", "paddlegan", "plain"]
DETECTOR_BACKENDS = ["sfd", "blazeface"]
AUTO_WEIGHTS = "auto"
# PaddleGAN's releases, offered by name even before they are on disk (picking one downloads it).
RELEASE_NAMES = [weights.KNOWN_WEIGHTS[key].filename for key in weights.FOM_RELEASES]
# Face-detector weights files the backends read (anchors.npy is BlazeFace's companion, not weights).
DETECTOR_EXTENSIONS = (".pth", ".pt", ".safetensors")


def _device_type(device) -> str:
    text = str(device)
    return text.split(":", 1)[0] if text else "cpu"


class _Cache:
    """A small LRU of loaded models, keyed by file identity and load options (ComfyUI's own output
    cache forgets a loader as soon as a prompt without it runs; this keeps the weights in memory
    until ComfyUI frees memory, see ``release_models``)."""

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

    def drop(self, device=None) -> int:
        """Forget the models on ``device``'s type (cpu, cuda, mps), or all with None; how many went."""
        with self.lock:
            keys = [k for k, v in self.items.items()
                    if device is None or _device_type(getattr(v, "device", "cpu")) == _device_type(device)]
            for key in keys:
                del self.items[key]
        return len(keys)


MODEL_CACHE = _Cache()
DETECTOR_CACHE = _Cache()


def _trim_heap() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise, and RSS stays high)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass


def release_models(device=None) -> int:
    """Drop the pack's loaded models (those on ``device``'s type, or all) and give the memory back:
    garbage collection, ComfyUI's ``soft_empty_cache`` (the CUDA/MPS cache) and a heap trim.
    ``Loaded.get()`` loads a dropped model again when a node next needs it. Returns how many went."""
    dropped = MODEL_CACHE.drop(device) + DETECTOR_CACHE.drop(device)
    if dropped:
        gc.collect()
        comfy.model_management.soft_empty_cache()
        _trim_heap()
        log.info("FOM: released %d loaded model(s)%s", dropped, f" on {device}" if device is not None else "")
    return dropped


def install_memory_hooks() -> None:
    """Make ComfyUI's memory management release the pack's models too.

    ComfyUI 0.3.x has no registry for memory held outside its ModelPatcher objects, so the two entry
    points are wrapped (once, keeping the originals as ``__wrapped__``):

    - ``unload_all_models``: ``POST /free`` with ``unload_models`` (the editor's "unload models"),
      ``free_memory``, an out-of-memory error and ``--disable-smart-memory`` end with it: drop all.
    - ``free_memory(memory_required, device)``: called when a model needs room on a device (and by
      ``unload_all_models``); when ComfyUI's own unloading left less than ``memory_required`` free
      on that device, drop the pack's models there.
    """
    mm = comfy.model_management
    if not getattr(mm.free_memory, "_fom_hook", False):
        original_free = mm.free_memory

        @functools.wraps(original_free)
        def free_memory(memory_required, device, *args, **kwargs):
            result = original_free(memory_required, device, *args, **kwargs)
            try:
                if mm.get_free_memory(device) < memory_required:
                    release_models(device)
            except Exception:  # never let the pack break ComfyUI's own memory management
                log.exception("FOM: could not release models on %s", device)
            return result

        free_memory._fom_hook = True
        mm.free_memory = free_memory
    if not getattr(mm.unload_all_models, "_fom_hook", False):
        original_unload = mm.unload_all_models

        @functools.wraps(original_unload)
        def unload_all_models(*args, **kwargs):
            result = original_unload(*args, **kwargs)
            try:
                release_models()
            except Exception:
                log.exception("FOM: could not release models")
            return result

        unload_all_models._fom_hook = True
        mm.unload_all_models = unload_all_models


install_memory_hooks()


def _file_key(path: str):
    st = os.stat(path)
    return os.path.realpath(path), st.st_mtime_ns, st.st_size


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
    if key is not None:  # the other spelling of a release on disk (vox_mobile.pdparams)
        found = weights.find_weights(key, folder_paths.get_folder_paths("fom"))
        if found is not None:
            return str(found)
    return None


_DOWNLOAD_LOCK = threading.Lock()


def _download_release(key: str) -> str:
    """Download a PaddleGAN release into ComfyUI/models/fom/ with ComfyUI's progress bar (bytes);
    Cancel stops it. The engine checks that the file reads as a checkpoint before moving it in."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        comfy.model_management.throw_exception_if_processing_interrupted()
        if bar is None:
            bar = comfy.utils.ProgressBar(max(total, 1))
        bar.update_absolute(done, max(total, done, 1))

    info = weights.KNOWN_WEIGHTS[key]
    with _DOWNLOAD_LOCK, engine_errors("FOMLoadModel"):
        found = weights.find_weights(key, folder_paths.get_folder_paths("fom"))  # another run got it meanwhile
        if found is not None:
            return str(found)
        if weights.downloads_allowed():
            log.info("FOM: downloading %s from %s", info.filename, weights.source_url(info))
        path = weights.ensure_weights(key, models_root=folder_paths.models_dir, progress=False, callback=progress)
    return str(path)


def _model_path(ckpt_name: str) -> str:
    path = _find_model(ckpt_name)
    if path is not None:
        return path
    key = _release(ckpt_name)
    if key is not None:
        return _download_release(key)
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
                io.Combo.Input("precision", options=PRECISIONS, default="fp32",
                               tooltip="fp32 is exact; bf16/fp16 are faster on GPUs with little visible change."),
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
    def execute(cls, ckpt_name, device, precision, warp_border, image_size=0) -> io.NodeOutput:
        from fom_pipeline import load_model

        path = _model_path(ckpt_name)
        dev = comfy_device(device)
        size = int(image_size) or None
        key = (*_file_key(path), dev, precision, warp_border, size)

        def load():
            log.info("FOM: loading %s (device=%s, precision=%s, warp_border=%s, image_size=%s)", ckpt_name, dev,
                     precision, warp_border, size or "auto")
            with engine_errors("FOMLoadModel"):
                return load_model(path, device=dev, precision=precision, warp_border=warp_border, image_size=size)

        model = MODEL_CACHE.get_or_load(key, load)  # load now, so a bad file fails in this node
        return io.NodeOutput(Loaded(key, load, MODEL_CACHE, {"image_size": model.image_size}))


def _detector_files() -> list[str]:
    """Weights files the backends can read: .pth/.pt/.safetensors (never anchors.npy)."""
    return [f for f in folder_paths.get_filename_list("face_detection") if f.lower().endswith(DETECTOR_EXTENSIONS)]


def _is_blazeface_file(name: str) -> bool:
    return "blazeface" in os.path.basename(name).lower()


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
