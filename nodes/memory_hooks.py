"""Give the pack's models back to the system when ComfyUI unloads all models (installed by the
extension's ``on_load``, never at import)."""

from __future__ import annotations

import functools
import logging

import comfy.model_management

from .model_cache import release_models

log = logging.getLogger("fom_multiface")


def install_memory_hooks() -> None:
    """Wrap ComfyUI's ``unload_all_models`` (once, keeping the original as ``__wrapped__``).

    ComfyUI manages the networks themselves through their ModelPatchers (``managed_models``): it
    moves them to the GPU before they run and off it when another model needs the room or on
    "unload models", so nothing here watches ``free_memory``. What no host has is a way to free
    the RAM of a model held outside its output cache: ComfyUI's own models leave memory when that
    cache drops its loaders' outputs, ours live in ``model_cache`` between runs. So after
    ``unload_all_models`` (``POST /free`` with ``unload_models``: the editor's "unload models";
    ``--disable-smart-memory``; an out-of-memory error) has unloaded them, the pack's cache forgets
    them too, and the next run loads them again.
    """
    mm = comfy.model_management
    if getattr(mm.unload_all_models, "_fom_hook", False):
        return
    original_unload = mm.unload_all_models

    @functools.wraps(original_unload)
    def unload_all_models(*args, **kwargs):
        result = original_unload(*args, **kwargs)
        try:
            release_models(empty_cache=mm.soft_empty_cache)
        except Exception:  # never let the pack break ComfyUI's own memory management
            log.exception("FOM: could not release models")
        return result

    unload_all_models._fom_hook = True
    mm.unload_all_models = unload_all_models
