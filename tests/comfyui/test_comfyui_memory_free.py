"""Memory given back in the real host: a full-size model loaded by FOMLoadModel leaves the server
process when the user asks ComfyUI to unload models (POST /free, the editor's "unload models"), and
the next prompt loads it again by itself."""

from __future__ import annotations

import re

import assets
import psutil
import pytest
from comfy_host import execution_error, wait_for
from workflow_files import model_prompt

BIG = "fom-memory-full-vox.pdparams"  # the vox-256 release architecture with random weights (~240 MB)
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def big_model(comfy_env):
    from fom_pipeline.testing import full_config

    path = comfy_env.base_dir / "models" / "fom" / BIG
    if not path.exists():
        assets.write_fomm_checkpoint(path, seed=5, config=full_config("vox-256"))
    return path


def _prompt(batch_size: int) -> dict:
    """Load the model, compute keypoints of the portrait, draw them: small, but it needs the networks."""
    return model_prompt(assets.PHOTO_FACE, BIG, batch_size=batch_size)


def _rss(server) -> int:
    return psutil.Process(server.proc.pid).memory_info().rss


@pytest.mark.timeout(400)
def test_unload_models_gives_the_memory_back_and_the_next_prompt_reloads(comfy_env, big_model):
    server = comfy_env
    model_bytes = big_model.stat().st_size
    assert model_bytes > 200 * MiB  # really the full-size architecture

    def loads() -> int:
        return server.log_text().count(f"FOM: loading {BIG} ")

    def releases() -> int:
        return server.log_text().count("FOM: released")

    first_loads, first_releases = loads(), releases()
    entry = server.run(_prompt(batch_size=32), timeout=300)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert len(entry["outputs"]["5"]["images"]) == 1
    assert loads() == first_loads + 1
    loaded = _rss(server)

    # The editor's "unload models" sends exactly this.
    server.session.post(f"{server.url}/free", json={"unload_models": True}, timeout=10).raise_for_status()
    assert wait_for(lambda: releases() > first_releases, 30), server.log_tail()
    # after ComfyUI's unload_all_models unloaded them, every model the pack held leaves its cache (other
    # tests' too when the whole suite shares this server)
    assert re.search(r"FOM: released [1-9]\d* loaded model\(s\)$", server.log_text(), re.M)
    wait_for(lambda: loaded - _rss(server) > 0.6 * model_bytes, 20)
    freed = _rss(server)
    print(f"server RSS: {loaded / MiB:.0f} MiB with the model, {freed / MiB:.0f} MiB after /free "
          f"(model file {model_bytes / MiB:.0f} MiB)")
    assert loaded - freed > 0.6 * model_bytes, (loaded / MiB, freed / MiB)

    # A changed keypoints node runs again and asks its (cached) Loaded handle for the model: reloaded.
    entry = server.run(_prompt(batch_size=16), timeout=300)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert loads() == first_loads + 2, "the model was not loaded again after /free"
    cached = {node for event, data in entry["status"]["messages"] if event == "execution_cached"
              for node in data["nodes"]}
    assert "2" in cached  # ComfyUI kept the loader's output (the small handle), not the networks
    assert _rss(server) - freed > 0.6 * model_bytes  # the weights are back in memory

    # Give the memory back for the rest of the session.
    server.session.post(f"{server.url}/free", json={"unload_models": True}, timeout=10).raise_for_status()
    assert wait_for(lambda: releases() > first_releases + 1, 30)
