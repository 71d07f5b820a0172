"""The pack's loaded models, kept between runs and given back when ComfyUI frees memory.

ComfyUI's output cache only keeps small ``Loaded`` handles (see ``types.Loaded``); the networks
live here, keyed by file identity and load options, until ``release_models`` drops them. Plain
Python: no ComfyUI import, so it is testable on its own; ``memory_hooks`` connects it to ComfyUI.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable

log = logging.getLogger("fom_multiface")


def device_type(device) -> str:
    """"cuda" for cuda:1, "cpu" for a torch.device("cpu"), ...: what memory a model sits in."""
    text = str(device)
    return text.split(":", 1)[0] if text else "cpu"


def file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """A file's identity: its real path, modification time and size. A checkpoint replaced under the
    same name gets a new key, so it is loaded again (and ComfyUI re-runs its loader, see the
    loaders' ``fingerprint_inputs``)."""
    st = os.stat(path)
    return os.path.realpath(path), st.st_mtime_ns, st.st_size


def file_fingerprint(path: str | os.PathLike | None):
    """What ComfyUI compares between runs of a node that reads a file (its ``fingerprint_inputs``): the
    file's identity, or None while it is not on disk."""
    return file_key(path) if path is not None and os.path.isfile(path) else None


class ModelCache:
    """A small LRU of loaded models, keyed by file identity and load options (ComfyUI's own output
    cache forgets a loader as soon as a prompt without it runs; this keeps the weights in memory
    until ComfyUI frees memory, see ``release_models``)."""

    def __init__(self, size: int = 3):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get_or_load(self, key, load: Callable):
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
                    if device is None or device_type(getattr(v, "device", "cpu")) == device_type(device)]
            for key in keys:
                del self.items[key]
        return len(keys)


MODEL_CACHE = ModelCache()
DETECTOR_CACHE = ModelCache()


def _trim_heap() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise, and RSS stays high)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass


def release_models(device=None, empty_cache: Callable[[], object] | None = None) -> int:
    """Drop the pack's loaded models (those on ``device``'s type, or all) and give the memory back:
    garbage collection, ``empty_cache`` (ComfyUI's ``soft_empty_cache``: the CUDA/MPS cache) and a
    heap trim. ``Loaded.get()`` loads a dropped model again when a node next needs it. Returns how
    many went."""
    dropped = MODEL_CACHE.drop(device) + DETECTOR_CACHE.drop(device)
    if dropped:
        gc.collect()
        if empty_cache is not None:
            empty_cache()
        _trim_heap()
        log.info("FOM: released %d loaded model(s)%s", dropped, f" on {device}" if device is not None else "")
    return dropped
