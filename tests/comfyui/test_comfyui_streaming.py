"""Streaming in the real host: LoadVideo -> our nodes -> SaveVideo renders batch by batch inside
Save Video. It equals the all-IMAGE path, takes a 1080p driving clip, renders once for several
consumers, stops on Cancel without leaving a file, and keeps the server's memory flat over many
prompts."""

from __future__ import annotations

import subprocess
import time

import assets
import numpy as np
import psutil
import pytest
from comfy_host import execution_error, shared_dir
from video_checks import BACKGROUND_MEAN, BACKGROUND_P99, FACE_CHANGED_MEAN, read_frames, read_photo
from workflow_files import api, image_path_twin, with_inputs

DRIVER_1080P = "fom_dv_1080p.mp4"
DRIVER_LONG = "fom_dv_long.mp4"


def _video(server, entry: dict, node: str):
    items = [i for i in entry["outputs"][node]["images"] if i["filename"].endswith(".mp4")]
    assert len(items) == 1, entry["outputs"]
    return server.output_path(items[0])


def _renders(server) -> int:
    return server.log_text().count("FOM: rendering")


@pytest.mark.timeout(400)
def test_streaming_output_equals_the_image_path(comfy_env):
    shipped = api("faces_by_hand_two_drivers")
    streamed = comfy_env.run(with_inputs(shipped, "SaveVideo", filename_prefix="fom/stream_eq"), timeout=300)
    assert streamed["status"]["status_str"] == "success", execution_error(streamed)
    images = comfy_env.run(with_inputs(image_path_twin(shipped), "SaveVideo", filename_prefix="fom/image_eq"),
                           timeout=300)
    assert images["status"]["status_str"] == "success", execution_error(images)

    a, b = _video(comfy_env, streamed, "17"), _video(comfy_env, images, "17")
    info_a, info_b = assets.probe(a), assets.probe(b)
    assert info_a == info_b, (info_a, info_b)  # frame count, size, fps, audio
    assert info_a["audio"] and info_a["frames"] > 0
    fa, fb = read_frames(a).astype(np.int16), read_frames(b).astype(np.int16)
    # Codec noise only: the IMAGE path goes through h264 three times (first paste's video decoded by
    # Get Video Components, the second's likewise, then Create Video's encoder), the stream once.
    diff = np.abs(fa - fb)
    assert diff.mean() < 1.6 * BACKGROUND_MEAN and np.percentile(diff, 99) <= BACKGROUND_P99, \
        (diff.mean(), np.percentile(diff, 99))
    # and it is an animation, not the photo: each pasted face differs from the photo it replaced
    photo = read_photo(comfy_env.base_dir / "input" / assets.PHOTO_MULTI).astype(np.int16)
    for box in shipped["3"]["inputs"]["boxes"].split(";"):
        x1, y1, x2, y2 = (int(v) for v in box.split(","))
        cx, cy, r = (x1 + x2) // 2, (y1 + y2) // 2, (y2 - y1) // 4
        assert np.abs(fa[:, cy - r : cy + r, cx - r : cx + r] - photo[cy - r : cy + r, cx - r : cx + r]).mean() \
            > FACE_CHANGED_MEAN, box


@pytest.fixture(scope="module")
def driver_1080p(comfy_env):
    """The seed's cropped driving clip placed in a 1920x1080 frame (face at 704..1216, 284..796)."""
    path = comfy_env.base_dir / "input" / DRIVER_1080P
    if not path.exists():
        src = comfy_env.base_dir / "input" / assets.DRIVER_CROPPED
        subprocess.run([assets.ffmpeg(), "-y", "-loglevel", "error", "-i", str(src), "-vf",
                        "scale=512:512,pad=1920:1080:704:284:gray", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                        "-preset", "ultrafast", "-c:a", "copy", str(path)], check=True)
    return path


@pytest.mark.timeout(300)
def test_a_1080p_driving_clip_is_cropped_and_streamed(comfy_env, driver_1080p):
    prompt = api("single_face")
    prompt["2"]["inputs"]["file"] = DRIVER_1080P
    prompt["5"]["inputs"]["box"] = "704,284,1216,796"
    prompt = with_inputs(prompt, "SaveVideo", filename_prefix="fom/from_1080p")
    entry = comfy_env.run(prompt, timeout=280)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    info = assets.probe(_video(comfy_env, entry, "9"))
    source = assets.probe(driver_1080p)
    assert (info["frames"], info["width"], info["height"]) == (source["frames"], 256, 256)
    assert info["fps"] == pytest.approx(source["fps"], rel=1e-3)


@pytest.mark.timeout(300)
def test_a_second_consumer_reuses_the_render(comfy_env):
    prompt = with_inputs(api("faces_by_hand_two_drivers"), "FOMPasteFaces", ratio=0.45)
    prompt = with_inputs(prompt, "SaveVideo", filename_prefix="fom/first_consumer")
    prompt["30"] = {"class_type": "SaveVideo", "inputs": {"video": ["15", 0], "filename_prefix": "fom/second_consumer",
                                                          "format": "auto", "codec": "auto"}}
    before = _renders(comfy_env)
    entry = comfy_env.run(prompt, timeout=280)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert _renders(comfy_env) == before + 1, "the networks ran again for the second Save Video"
    first, second = _video(comfy_env, entry, "17"), _video(comfy_env, entry, "30")
    assert first != second
    assert np.array_equal(read_frames(first), read_frames(second))


@pytest.fixture(scope="module")
def long_driver(comfy_env):
    """A 1200-frame driving clip (40 s at 30 fps): rendering all faces takes minutes."""
    path = comfy_env.base_dir / "input" / DRIVER_LONG
    if not path.exists():
        assets.make_clip(shared_dir() / "media" / assets.DRIVER_CROPPED, path, frames=1200, audio=True)
    return path


def cancel_mid_render(server, clip: str, prefix: str, after_frames: int = 16, linger: float = 3.0):
    """Queue faces_by_hand_two_drivers on ``clip`` and press Cancel (POST /interrupt) once Save Video's
    render has written ``after_frames`` frames; returns (what was watched, when Cancel was pressed).
    Shared with benchmarks/cancel_latency.py, which times the stop."""
    prompt = api("faces_by_hand_two_drivers")
    prompt["6"]["inputs"]["file"] = prompt["8"]["inputs"]["file"] = clip
    prompt = with_inputs(prompt, "SaveVideo", filename_prefix=prefix)
    pressed: list[float] = []

    def press_cancel(data: dict) -> None:
        if not pressed and data["node"] == "17" and data["value"] >= after_frames:
            pressed.append(time.monotonic())
            server.interrupt()

    watched = server.run_watching_progress(prompt, timeout=280, on_progress=press_cancel, linger=linger)
    return watched, (pressed[0] if pressed else None)


@pytest.mark.timeout(400)
def test_cancel_stops_the_render_and_leaves_no_file(comfy_env, long_driver):
    """Cancel during Save Video's render of a 1200-frame clip: the render stops (far short of its
    end; how fast is benchmarks/cancel_latency.py's to measure, not a test's), no progress follows
    the stop, no file or partial file is left, and the server runs the next prompt."""
    before = _renders(comfy_env)
    watched, pressed = cancel_mid_render(comfy_env, DRIVER_LONG, "fom/cancelled")
    assert pressed is not None, f"the render never reached 16 frames: {watched.progress[-3:]}"
    assert _renders(comfy_env) == before + 1
    messages = dict(watched.entry["status"]["messages"])
    assert watched.end_event == "execution_interrupted" and "execution_interrupted" in messages, list(messages)
    assert messages["execution_interrupted"]["node_type"] == "SaveVideo"
    rendered = max(p["value"] for p in watched.progress if p["node"] == "17")
    assert rendered < 600, f"{rendered} of 1200 frames rendered: Cancel did not stop the render"
    assert watched.late == [], "progress went on after the prompt was interrupted"
    out = comfy_env.base_dir / "output" / "fom"
    assert not [p.name for p in out.glob("cancelled*")], "a partial video was left in output/"
    temp = comfy_env.base_dir / "temp" / "fom"
    partials = [p.name for p in temp.glob("*.partial*")] if temp.exists() else []
    assert partials == [], "the cancelled render left its temporary file"
    good = comfy_env.run(with_inputs(api("single_face"), "SaveVideo", filename_prefix="fom/after_cancel"))
    assert good["status"]["status_str"] == "success"


@pytest.mark.timeout(900)
def test_twenty_prompts_leave_memory_flat(comfy_env):
    """Changing inputs 20 times: the server's memory stays within 10% of where the second prompt left it."""
    proc = psutil.Process(comfy_env.proc.pid)
    shipped = api("faces_by_hand_two_drivers")
    rss = []
    for i in range(20):
        prompt = with_inputs(shipped, "FOMPasteFaces", ratio=round(0.4 + 0.01 * i, 2))
        prompt = with_inputs(prompt, "FOMFacesFromBoxes",
                             boxes=f"190,170,320,{305 + i};405,305,515,425;600,185,700,300;695,320,805,440;"
                                   "1085,270,1190,400")
        prompt = with_inputs(prompt, "SaveVideo", filename_prefix=f"fom/flat_{i}")
        entry = comfy_env.run(prompt, timeout=280)
        assert entry["status"]["status_str"] == "success", execution_error(entry)
        rss.append(proc.memory_info().rss)
    mib = [round(r / 2**20) for r in rss]
    assert rss[-1] <= 1.10 * rss[1], mib
    assert max(rss[2:]) <= 1.10 * rss[1], mib


@pytest.mark.timeout(400)
def test_progress_moves_on_save_video_during_the_render(comfy_env):
    clip = comfy_env.base_dir / "input" / "fom_dv_48.mp4"
    if not clip.exists():
        assets.make_clip(shared_dir() / "media" / assets.DRIVER_CROPPED, clip, frames=48, audio=True)
    prompt = api("faces_by_hand_two_drivers")
    prompt["6"]["inputs"]["file"] = prompt["8"]["inputs"]["file"] = clip.name
    prompt = with_inputs(prompt, "SaveVideo", filename_prefix="fom/progress")
    watched = comfy_env.run_watching_progress(prompt)
    entry, progress = watched.entry, watched.progress
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    on_save = [(p["value"], p["max"]) for p in progress if p["node"] == "17"]
    assert len(on_save) >= 4, progress  # batch by batch, not one jump at the end
    assert all(total == 48 for _, total in on_save), on_save
    values = [v for v, _ in on_save]
    assert values == sorted(values) and values[-1] == 48 and values[0] < 48, values
    keypoints = [p for p in progress if p["node"] in ("10", "11")]
    assert keypoints and keypoints[-1]["value"] == keypoints[-1]["max"] == 48
