"""PaddleGAN's releases fetched into ComfyUI/models/fom/ the first time FOMLoadModel needs one."""

from __future__ import annotations

import logging
import threading

import comfy.model_management
import comfy.utils
import folder_paths

from fom_pipeline import weights

from .common import engine_errors

log = logging.getLogger("fom_multiface")

_DOWNLOAD_LOCK = threading.Lock()


def download_release(key: str) -> str:
    """Download a PaddleGAN release (a ``weights.FOM_RELEASES`` key) into ComfyUI/models/fom/ with
    ComfyUI's progress bar (bytes); Cancel stops it. The engine checks that the file reads as a
    checkpoint before moving it in. One download at a time: a second run waiting here finds the
    file the first one fetched."""
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
