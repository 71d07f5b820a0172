"""Make ComfyUI's memory management release the pack's models too (installed by the extension's
``on_load``, never at import)."""

from __future__ import annotations

import functools
import logging

import comfy.model_management

from .model_cache import release_models

log = logging.getLogger("fom_multiface")


def install_memory_hooks() -> None:
    """Wrap ComfyUI's two memory entry points (once, keeping the originals as ``__wrapped__``).

    ComfyUI 0.3.x has no registry for memory held outside its ModelPatcher objects, so:

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
                    release_models(device, empty_cache=mm.soft_empty_cache)
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
                release_models(empty_cache=mm.soft_empty_cache)
            except Exception:
                log.exception("FOM: could not release models")
            return result

        unload_all_models._fom_hook = True
        mm.unload_all_models = unload_all_models
