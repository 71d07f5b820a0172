"""The nodes' model cache on its own (plain Python, no ComfyUI): LRU reuse, release by device, and
the file identity that makes a checkpoint replaced under the same name load again."""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest
from kit import load_node_module


@pytest.fixture
def cache_module():
    """nodes/model_cache.py, imported without ComfyUI."""
    return load_node_module("model_cache")


def test_loads_once_and_keeps_the_most_recent(cache_module):
    cache = cache_module.ModelCache(size=2)
    loads = []

    def loader(name):
        return lambda: loads.append(name) or SimpleNamespace(name=name, device="cpu")

    first = cache.get_or_load("a", loader("a"))
    assert cache.get_or_load("a", loader("a")) is first and loads == ["a"]
    cache.get_or_load("b", loader("b"))
    cache.get_or_load("a", loader("a"))  # a is now the most recent
    cache.get_or_load("c", loader("c"))  # so b goes
    assert list(cache.items) == ["a", "c"] and loads == ["a", "b", "c"]
    cache.get_or_load("b", loader("b"))
    assert loads == ["a", "b", "c", "b"]


def test_release_drops_by_device_type_and_empties_once(cache_module, caplog):
    m = cache_module
    m.MODEL_CACHE.items.clear()
    m.DETECTOR_CACHE.items.clear()
    m.MODEL_CACHE.get_or_load("gpu", lambda: SimpleNamespace(device="cuda:0"))
    m.MODEL_CACHE.get_or_load("cpu", lambda: SimpleNamespace(device="cpu"))
    m.DETECTOR_CACHE.get_or_load("det", lambda: SimpleNamespace(device="cuda"))
    emptied = []
    with caplog.at_level(logging.INFO, logger="fom_multiface"):
        assert m.release_models("cuda:1", empty_cache=lambda: emptied.append(1)) == 2
    assert list(m.MODEL_CACHE.items) == ["cpu"] and not m.DETECTOR_CACHE.items and emptied == [1]
    assert "FOM: released 2 loaded model(s) on cuda:1" in caplog.text
    assert m.release_models("mps", empty_cache=lambda: emptied.append(1)) == 0 and emptied == [1]
    assert m.release_models() == 1 and not m.MODEL_CACHE.items


def test_file_key_changes_when_the_file_is_replaced(cache_module, tmp_path):
    path = tmp_path / "model.pdparams"
    path.write_bytes(b"a" * 100)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    first = cache_module.file_key(path)
    assert first == (os.path.realpath(path), 1_000_000_000, 100)
    assert cache_module.file_key(path) == first  # untouched: same key, the cached model is reused
    replacement = tmp_path / "new.pdparams"
    replacement.write_bytes(b"b" * 100)  # same size, written later
    os.utime(replacement, ns=(2_000_000_000, 2_000_000_000))
    os.replace(replacement, path)
    assert cache_module.file_key(path) != first
    path.write_bytes(b"c" * 101)
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert cache_module.file_key(path)[2] == 101


def test_forgotten_values_are_told_and_peek_never_loads(cache_module):
    """A value with release() (a ManagedModel: ComfyUI drops its entry) hears when the LRU evicts
    it or release drops it; peek answers without loading."""
    cache = cache_module.ModelCache(size=1)
    released = []

    def value(name):
        return SimpleNamespace(name=name, device="cpu", release=lambda: released.append(name))

    assert cache.peek("a") is None and not cache.items  # nothing loaded by asking
    first = cache.get_or_load("a", lambda: value("a"))
    assert cache.peek("a") is first and released == []
    cache.get_or_load("b", lambda: value("b"))  # size 1: a is evicted
    assert released == ["a"] and cache.peek("a") is None
    assert cache.drop() == 1 and released == ["a", "b"]


def test_a_model_follows_its_handles_only_where_the_host_cache_rules(cache_module):
    """hold() counts handles; when the last is collected the model goes only if follows_holders()
    says the host's output cache decides (ComfyUI 0.33's RAM-pressure cache), else it stays."""
    import gc

    cache = cache_module.ModelCache()
    released = []

    class Handle:
        pass

    def load():
        return SimpleNamespace(device="cpu", release=lambda: released.append(1))

    cache.get_or_load("a", load)
    first, second = Handle(), Handle()
    cache.hold("a", first)
    cache.hold("a", second)
    del first
    gc.collect()
    assert "a" in cache.items and cache.holders == {"a": 1}
    del second
    gc.collect()
    assert "a" in cache.items and not released  # no host rule: the pack keeps it
    cache.follows_holders = lambda: True
    third = Handle()
    cache.hold("a", third)
    del third
    gc.collect()
    assert "a" not in cache.items and released == [1] and not cache.holders
