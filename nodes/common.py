"""Shared helpers for the adapters: ComfyUI <-> engine conversions, progress, cancellation, errors.

ComfyUI's modules are imported inside the functions that use them, so the conversions and the error
wording import (and are tested) without ComfyUI.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch

from fom_pipeline.arrays import as_numpy, as_tensor

PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATEGORY = "FOM"
FOLDER_EXTENSIONS = {
    "fom": {".tar", ".pth", ".pdparams", ".safetensors", ".ckpt"},
    "face_detection": {".pth", ".npy", ".pt", ".safetensors"},
    "fom_motion": {".safetensors"},
}


class FOMNodeError(RuntimeError):
    """A user-fixable problem reported by the engine, shown in ComfyUI as the node's error."""


def register_model_folders() -> None:
    """Search ComfyUI/models/<name>/ first, then this pack's models/<name>/ for each model kind."""
    import folder_paths

    for name, exts in FOLDER_EXTENSIONS.items():
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name), is_default=True)
        folder_paths.add_model_folder_path(name, os.path.join(PACK_DIR, "models", name))
        found = folder_paths.folder_names_and_paths[name][1]
        if isinstance(found, set):
            found.update(exts)
        else:
            folder_paths.folder_names_and_paths[name] = (folder_paths.folder_names_and_paths[name][0], set(exts))


@contextlib.contextmanager
def engine_errors(node: str):
    """Turn the engine's FOMError into a one-line node error (no engine stack)."""
    from fom_pipeline.errors import FOMError

    try:
        yield
    except FOMError as exc:
        raise FOMNodeError(f"{node}: {exc.worded('node')}") from None  # the nodes' advice, not the CLI's


def progress_callback(total: int):
    """A ``progress(done, total)`` for the engine that moves ComfyUI's bar and honours Cancel."""
    import comfy.model_management
    import comfy.utils

    bar = comfy.utils.ProgressBar(total)

    def progress(done: int, new_total: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, max(new_total, done))

    return progress


def check_interrupt() -> None:
    import comfy.model_management

    comfy.model_management.throw_exception_if_processing_interrupted()


def comfy_device(choice: str, node: str) -> str:
    """The engine's device rule, "auto" following ComfyUI's model management (so --cpu is honoured)."""
    import comfy.model_management

    from fom_pipeline.devices import resolve_device

    with engine_errors(node):
        return resolve_device(choice, auto=comfy.model_management.get_torch_device).type


def to_numpy(images: torch.Tensor) -> np.ndarray:
    """ComfyUI IMAGE [B,H,W,C] -> float32 numpy [B,H,W,3]."""
    return np.ascontiguousarray(as_numpy(images)[..., :3], dtype=np.float32)


def to_image(array) -> torch.Tensor:
    """float32 [B,H,W,3] numpy/tensor -> ComfyUI IMAGE (CPU float32 tensor, clamped to [0, 1])."""
    return as_tensor(array).detach().to("cpu", torch.float32).clamp_(0.0, 1.0)
