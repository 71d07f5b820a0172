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
import weakref
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
    until ComfyUI frees memory, see ``release_models``). A value with a ``release()`` method is told
    when it is forgotten (``managed_models``: ComfyUI drops its entry for the model).

    Where the host's output cache decides how long outputs live (``follows_holders()``: ComfyUI
    0.33's RAM-pressure cache), a model also goes when the last handle ``hold`` counted for it is
    gone: that cache let go of every loader output that needs it."""

    def __init__(self, size: int = 3):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.RLock()  # re-entrant: a handle collected by the GC inside a locked section lets go
        self.holders: dict = {}  # key -> how many live handles (``types.Loaded``) point at it
        self.follows_holders: Callable[[], bool] = lambda: False  # both set by memory_hooks
        self.empty_cache: Callable[[], object] | None = None

    def get_or_load(self, key, load: Callable):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = load()
        with self.lock:
            self.items[key] = value
            evicted = [self.items.popitem(last=False)[1] for _ in range(len(self.items) - self.size)]
        _forget(evicted)
        return value

    def peek(self, key):
        """The value loaded under ``key``, or None (never loads)."""
        with self.lock:
            return self.items.get(key)

    def hold(self, key, handle) -> None:
        """Count ``handle`` as a holder of ``key``'s model until it is garbage-collected."""
        with self.lock:
            self.holders[key] = self.holders.get(key, 0) + 1
        weakref.finalize(handle, self._let_go, key)

    def _let_go(self, key) -> None:
        with self.lock:
            left = self.holders.get(key, 1) - 1
            if left > 0:
                self.holders[key] = left
                return
            self.holders.pop(key, None)
            value = self.items.pop(key, None) if self.follows_holders() else None
        if value is not None:
            _forget([value])
            give_back(1, " (ComfyUI's output cache let go of its loader)", self.empty_cache)

    def drop(self, device=None) -> int:
        """Forget the models on ``device``'s type (cpu, cuda, mps), or all with None; how many went."""
        with self.lock:
            keys = [k for k, v in list(self.items.items())
                    if device is None or device_type(getattr(v, "device", "cpu")) == device_type(device)]
            dropped = [self.items.pop(key) for key in keys]
        _forget(dropped)
        return len(dropped)


def _forget(values) -> None:
    for value in values:
        release = getattr(value, "release", None)
        if release is not None:
            release()


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
    """Drop the pack's loaded models (those on ``device``'s type, or all) and give the memory back
    (see ``give_back``). ``Loaded.get()`` loads a dropped model again when a node next needs it.
    Returns how many went."""
    dropped = MODEL_CACHE.drop(device) + DETECTOR_CACHE.drop(device)
    if dropped:
        give_back(dropped, f" on {device}" if device is not None else "", empty_cache)
    return dropped


def give_back(dropped: int, why: str, empty_cache: Callable[[], object] | None = None) -> None:
    """Return the memory of ``dropped`` models just forgotten: garbage collection, ``empty_cache``
    (ComfyUI's ``soft_empty_cache``: the CUDA/MPS cache) and a heap trim; logged with ``why``."""
    gc.collect()
    if empty_cache is not None:
        empty_cache()
    _trim_heap()
    log.info("FOM: released %d loaded model(s)%s", dropped, why)
