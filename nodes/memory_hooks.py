"""Give the pack's models back to the system when ComfyUI unloads all models, and let ComfyUI
0.33's RAM-pressure output cache decide how long they stay (installed by the extension's
``on_load``, never at import)."""

from __future__ import annotations

import functools
import logging

import comfy.model_management

from .model_cache import DETECTOR_CACHE, MODEL_CACHE, release_models

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
    them too, and the next run loads them again. And where the output cache itself frees memory
    (``follow_output_cache``), a model goes with the last loader output that needs it.
    """
    follow_output_cache()
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


def follow_output_cache() -> None:
    """Let ComfyUI 0.33's RAM-pressure output cache decide how long the pack's models stay.

    That cache keeps outputs across prompts and evicts them when RAM runs short (a loader output
    with a ``patcher``, as ``types.Loaded`` has, among the first); a model whose loader outputs are
    all evicted then leaves the pack's cache too. It announces itself only while it runs a prompt
    (``comfy.memory_management``'s release callback). Hosts without it (0.3.75; 0.33 with
    ``--cache-classic``) forget a loader's output as soon as a prompt without it runs, so there the
    pack keeps its models until "unload models", as before.
    """
    try:
        import comfy.memory_management as host_memory
    except ImportError:  # 0.3.75: no RAM-pressure cache
        return

    def ram_pressure_cache_running() -> bool:
        return getattr(host_memory, "extra_ram_release_callback", None) is not None

    for cache in (MODEL_CACHE, DETECTOR_CACHE):
        cache.follows_holders = ram_pressure_cache_running
        cache.empty_cache = comfy.model_management.soft_empty_cache
