"""ComfyUI's model management sees the pack's networks: after a run the FOMM networks and the face
detector are in ``comfy.model_management.current_loaded_models`` with their real size, "unload
models" (POST /free) takes them out, and the next run loads them again with the same frames.

The server is one of its own carrying a test-only extension (loaded_models_probe.py, see the
``probed_env`` fixture) that shows ``current_loaded_models``; the shipped pack has no such route."""

from __future__ import annotations

import assets
import numpy as np
import pytest
from comfy_host import execution_error, wait_for
from kit import load_node_module
from video_checks import read_frames
from workflow_files import fast, model_prompt, with_inputs

MiB = 1024 * 1024
OURS = {"FOMNetworks", "FaceDetectorNetwork"}


def _ours(server) -> dict:
    """Our entries in ComfyUI's loaded models, by the name of the module ComfyUI manages."""
    return {m["name"]: m for m in server.get_json("/fom_test/loaded_models") if m["name"] in OURS}


def _render(server, prompt: dict, prefix: str) -> np.ndarray:
    entry = server.run(with_inputs(prompt, "SaveVideo", filename_prefix=prefix), timeout=280)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    video = next(i for i in entry["outputs"]["11"]["images"] if i["filename"].endswith(".mp4"))
    return read_frames(server.output_path(video))


def _expected_sizes(base) -> dict:
    """What ComfyUI should account for: every parameter and buffer of the networks, loaded as the
    server loads them (same files, same automatic precision on this CPU)."""
    import fom_pipeline as fp
    from fom_pipeline.faces import load_face_detector

    managed = load_node_module("managed_models")
    model = fp.load_model(base / "models" / "fom" / assets.CHECKPOINT, device="cpu", precision="auto")
    detector = load_face_detector("sfd", weights_path=base / "models" / "face_detection" / assets.SFD_WEIGHTS)
    return {"FOMNetworks": managed.network_bytes(managed.FOMNetworks(managed.fom_modules(model), "cpu")),
            "FaceDetectorNetwork": managed.network_bytes(
                managed.FaceDetectorNetwork(managed.detector_modules(detector), "cpu"))}


@pytest.mark.timeout(600)
def test_comfyui_manages_unloads_and_reloads_our_networks(probed_env):
    server = probed_env
    prompt = fast("multi_face_animation")  # the shipped workflow: detector, model, streamed paste

    def loads() -> tuple[int, int]:
        text = server.log_text()
        return text.count(f"FOM: loading {assets.CHECKPOINT} "), text.count("FOM: loading face detector sfd")

    assert not _ours(server)
    first = _render(server, prompt, "fom/managed_first")
    after_run = _ours(server)
    assert set(after_run) == OURS, server.get_json("/fom_test/loaded_models")
    expected = _expected_sizes(server.base_dir)
    for name, entry in after_run.items():
        assert entry["size"] == expected[name], (name, entry, expected[name])
        assert entry["loaded_size"] == entry["size"] and entry["device"] == "cpu", entry
    assert loads() == (1, 1)

    # The editor's "unload models" sends exactly this; ComfyUI unloads ours with its own.
    server.session.post(f"{server.url}/free", json={"unload_models": True}, timeout=10).raise_for_status()
    assert wait_for(lambda: not _ours(server), 30), _ours(server)
    assert wait_for(lambda: "FOM: released 2 loaded model(s)" in server.log_text(), 30), server.log_tail()

    # Same results from a run that needs both networks again: a threshold every generated face passes
    # (all score 0.982) re-runs the detection, a reference index unused with reference "first" re-runs
    # the transfer; the keypoints stay in ComfyUI's cache.
    again = with_inputs(with_inputs(prompt, "FOMDetectFaces", threshold=0.6), "FOMTransferMotion", reference_index=1)
    second = _render(server, again, "fom/managed_second")
    assert loads() == (2, 2), "the networks were not loaded again after /free"
    assert set(_ours(server)) == OURS
    assert first.shape == second.shape and np.array_equal(first, second), np.abs(
        first.astype(int) - second.astype(int)).max()
    print("current_loaded_models after a run: " + ", ".join(
        f"{name} {entry['size'] / MiB:.1f} MiB on {entry['device']} ({entry['patcher']})"
        for name, entry in sorted(after_run.items())) + "; after /free: none of ours")


@pytest.mark.timeout(400)
def test_another_workflow_frees_them_where_the_output_cache_rules(probed_env, comfy_host):
    """ComfyUI 0.33's RAM-pressure output cache (its default) evicts the outputs of earlier workflows
    once another one runs (its inactive headroom is all of RAM) and our models leave with their
    loader's output, as its own do. 0.3.75's classic cache forgets the loader's output too, but
    there the pack keeps its models for later runs until "unload models"."""
    server = probed_env
    server.session.post(f"{server.url}/free", json={"unload_models": True}, timeout=10).raise_for_status()
    assert wait_for(lambda: not _ours(server), 30)
    model_run = model_prompt(assets.PHOTO_FACE, assets.CHECKPOINT)

    def loads() -> int:
        return server.log_text().count(f"FOM: loading {assets.CHECKPOINT} ")

    def run(prompt: dict) -> None:
        entry = server.run(prompt, timeout=280)
        assert entry["status"]["status_str"] == "success", execution_error(entry)

    before = loads()
    run(model_run)
    assert "FOMNetworks" in _ours(server) and loads() == before + 1
    released = "FOM: released 1 loaded model(s) (ComfyUI's output cache let go of its loader)"
    assert released not in server.log_text()
    run({"1": {"class_type": "LoadImage", "inputs": {"image": assets.PHOTO_MULTI}},  # no FOM node at all
         "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
         "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}})
    if comfy_host.newer:
        assert released in server.log_text(), server.log_tail()
        assert "FOMNetworks" not in _ours(server)
    else:
        assert released not in server.log_text()
        assert "FOMNetworks" in _ours(server)
    run(model_run)
    assert loads() == before + (2 if comfy_host.newer else 1)
    assert "FOMNetworks" in _ours(server)
