"""ComfyUI 0.33's video features in the real host, on our VIDEO: Save Video's re-encode options
reach the file, and core's Video Slice trims a driving clip (read exactly as core reads it) and our
rendered VIDEO (lazily, with strict_duration reported by core's node).

Only ComfyUI 0.33 has these: 0.3.75's Save Video takes only format/codec (no re-encode options) and
it has no Video Slice node and no trim on its VIDEO; test_streamed_video.py calls the same code
directly on both hosts."""

from __future__ import annotations

import math

import assets
import pytest
from comfy_host import execution_error
from workflow_files import api

pytestmark = pytest.mark.hosts("0.33")


def _outputs(server, entry: dict, node: str) -> list:
    return [server.output_path(i) for i in entry["outputs"][node]["images"]]


def _video_bytes(path) -> int:
    """The size of the video stream's packets (the file also holds audio and the workflow metadata)."""
    import av

    with av.open(str(path)) as c:
        return sum(packet.size for packet in c.demux(c.streams.video[0]))


def _save_video(video: list, prefix: str, **nested) -> dict:
    """0.33's Save Video as the editor writes it: the nested options as dotted input names."""
    inputs = {"video": video, "filename_prefix": prefix, "format": "mp4", "format.codec": "h264"}
    inputs.update({f"format.codec.{k}": v for k, v in nested.items()})
    return {"class_type": "SaveVideo", "inputs": inputs}


@pytest.mark.timeout(400)
def test_save_videos_crf_reaches_the_file(comfy_env):
    """One render per encoding: crf 0 and crf 51 from the same animation, as Save Video's
    re-encode option sets them, give files of very different sizes (same frames, same size)."""
    prompt = api("single_face")
    del prompt["9"]
    for node, crf in (("30", 0.0), ("31", 51.0)):
        prompt[node] = _save_video(["8", 0], f"fom/crf{int(crf)}", encoding="re-encode",
                                   **{"encoding.crf": crf, "encoding.color_space": "auto"})
    before = comfy_env.log_text().count("FOM: rendering")
    entry = comfy_env.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert comfy_env.log_text().count("FOM: rendering") == before + 2  # one render per encoding
    (lossless,), (smallest,) = _outputs(comfy_env, entry, "30"), _outputs(comfy_env, entry, "31")
    sizes = _video_bytes(lossless), _video_bytes(smallest)
    print(f"ComfyUI 0.33 Save Video: crf 0 -> {sizes[0]} bytes of video ({lossless.stat().st_size} in the file), "
          f"crf 51 -> {sizes[1]} ({smallest.stat().st_size}); the files also hold the workflow")
    assert sizes[0] > 10 * sizes[1], sizes
    a, b = assets.probe(lossless), assets.probe(smallest)
    assert (a["frames"], a["width"], a["height"]) == (b["frames"], b["width"], b["height"]) and a["frames"] > 0


@pytest.mark.timeout(400)
def test_video_slice_of_the_driving_clip_animates_exactly_its_frames(comfy_env):
    """A -0.08 s slice (the clip's last frames) of the driving clip: our nodes animate exactly the
    frames core's own Save Video writes for that slice, and the keypoints' progress announces the
    count it then reaches (before: the whole clip was animated and 7 frames announced for 5)."""
    prompt = api("single_face")
    prompt["20"] = {"class_type": "Video Slice",
                    "inputs": {"video": ["2", 0], "start_time": -0.08, "duration": 0.0, "strict_duration": False}}
    prompt["5"]["inputs"]["driving"] = ["20", 0]
    prompt["21"] = {"class_type": "SaveVideo", "inputs": {"video": ["20", 0], "filename_prefix": "fom/core_slice",
                                                          "format": "auto", "codec": "auto"}}
    prompt["9"]["inputs"]["filename_prefix"] = "fom/sliced"
    watched = comfy_env.run_watching_progress(prompt)
    entry, progress = watched.entry, watched.progress
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    ours = assets.probe(_outputs(comfy_env, entry, "9")[0])
    core = assets.probe(_outputs(comfy_env, entry, "21")[0])
    whole = assets.probe(comfy_env.base_dir / "input" / assets.DRIVER_HEAD)
    assert 0 < ours["frames"] == core["frames"] < whole["frames"], (ours, core, whole)
    keypoints = [(p["value"], p["max"]) for p in progress if p["node"] == "6"]
    assert keypoints and keypoints[-1] == (ours["frames"], ours["frames"]), keypoints


@pytest.mark.timeout(400)
def test_video_slice_of_our_video_is_lazy_and_strict(comfy_env):
    """Video Slice on our rendered VIDEO keeps exactly the frames in its window (core's rule: at or
    after the start, before the end); a strict slice longer than the clip is the node's error."""
    prompt = api("single_face")
    prompt["22"] = {"class_type": "Video Slice",
                    "inputs": {"video": ["8", 0], "start_time": 0.04, "duration": 0.08, "strict_duration": True}}
    prompt["9"]["inputs"].update(video=["22", 0], filename_prefix="fom/our_slice")
    entry = comfy_env.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    fps = assets.probe(comfy_env.base_dir / "input" / assets.DRIVER_HEAD)["fps"]
    expected = math.ceil(0.12 * fps - 1e-6) - math.ceil(0.04 * fps - 1e-6)
    assert assets.probe(_outputs(comfy_env, entry, "9")[0])["frames"] == expected

    prompt["22"]["inputs"]["duration"] = 60.0
    failed = comfy_env.run(prompt, timeout=300)
    error = execution_error(failed)
    assert failed["status"]["status_str"] == "error" and error["node_type"] == "Video Slice", error
    assert "Failed to slice video" in error["exception_message"]
