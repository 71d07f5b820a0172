"""Faces in a source video, in the real host: the shipped faces_in_a_video workflow (Load Video source
and driver -> our nodes -> Save Video) run over HTTP with the tracking model, its faces typed for the
first frame (FOM Faces From Boxes: no detector weights here), on a generated source video that pans
slowly over three marked faces (tests/video_scene.py) and a driver swaying its red mark.

Each face's red mark must sit at its place in that source frame plus the driver's sway, frame by
frame; away from the faces each output frame is its source frame (codec noise aside). A face that
leaves the frame and a cut to another shot: those frames keep the source there. Bad input is a node
error and the server goes on serving.
"""

from __future__ import annotations

import assets
import numpy as np
import pytest
from comfy_host import execution_error
from motion_scene import boxes_text, driver_frames, sway
from video_checks import read_frames
from video_scene import PAN_FACES, away_and_back, circles_mask, mark_near, other_shot, pan_clip
from workflow_files import api, with_inputs

from fom_pipeline.testing import write_clip

DRIVER = "fom_video_sway.mp4"
FRAMES = 12
TOLERANCE_PX = 1.0  # frame pixels after the source's, the driver's and the output's h264 (measured: ~0.3)


def _clips():
    panning = pan_clip(FRAMES)
    leaving = pan_clip(FRAMES)
    leaving.offsets = away_and_back(FRAMES, 20.0, 8)  # face 1 leaves the frame on the left, comes back
    leaving.cut, leaving.other = (10,), other_shot()
    return {"fom_video_pan.mp4": panning, "fom_video_leave_cut.mp4": leaving}


CLIPS = _clips()


@pytest.fixture(scope="module")
def video_env(comfy_env):
    """The host with the tracking checkpoint, the generated source videos and the driver in input/."""
    base = comfy_env.base_dir
    assets.put_tracking_checkpoint(base)
    for name, clip in CLIPS.items():
        if not (base / "input" / name).exists():
            write_clip(base / "input" / name, clip.frames())
    if not (base / "input" / DRIVER).exists():
        write_clip(base / "input" / DRIVER, driver_frames(sway(FRAMES, 0)))
    (base / "input" / "fom_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return comfy_env


def _prompt(source: str, prefix: str, boxes: str | None = None) -> dict:
    """The shipped workflow with the faces typed for the first frame instead of detected."""
    prompt = api("faces_in_a_video")
    detect = prompt.pop("6")
    prompt.pop("5")  # the detector loader: no detector weights in these tests
    prompt["6"] = {"class_type": "FOMFacesFromBoxes",
                   "inputs": {"image": detect["inputs"]["image"], "boxes": boxes or boxes_text(PAN_FACES),
                              "crop_mode": "square", "crop_scale": 2.0, "size": 0}}
    prompt = with_inputs(prompt, "FOMLoadModel", ckpt_name=assets.TRACKING_CHECKPOINT, device="cpu")
    prompt["1"]["inputs"]["file"], prompt["2"]["inputs"]["file"] = source, DRIVER
    return with_inputs(prompt, "SaveVideo", filename_prefix=prefix)


def _render(server, source: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    entry = server.run(_prompt(source, prefix), timeout=280)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    videos = [i for i in entry["outputs"]["11"]["images"] if i["filename"].endswith(".mp4")]
    assert len(videos) == 1, entry["outputs"]
    return read_frames(server.output_path(videos[0])), read_frames(server.base_dir / "input" / source)


def _assert_background_is_the_source(out: np.ndarray, source: np.ndarray, away: np.ndarray, label: str) -> None:
    diff = np.abs(out.astype(int) - source.astype(int)).max(-1)[away]
    assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 16, f"{label}: the source changed away from the faces"


@pytest.mark.timeout(600)
def test_each_face_of_a_panning_video_follows_the_driver_on_its_own_frame(video_env):
    out, source = _render(video_env, "fom_video_pan.mp4", "fom/video_pan")
    clip, path = CLIPS["fom_video_pan.mp4"], sway(FRAMES, 0)
    assert out.shape == (FRAMES, 320, 640, 3), out.shape
    worst = 0.0
    for i in range(len(clip.faces)):
        for t in range(FRAMES):
            err = np.linalg.norm(mark_near(out[t], clip.source_mark(t, i)) - clip.expected(t, i, path))
            assert err < TOLERANCE_PX, f"face {i + 1}, frame {t}: {err:.2f} px from its source place plus the sway"
            worst = max(worst, float(err))
        motion = np.array([mark_near(out[t], clip.source_mark(t, i)) - clip.source_mark(t, i) for t in range(FRAMES)])
        assert np.ptp(motion[:, 1]) < TOLERANCE_PX, f"face {i + 1} moved across the driver's axis"
    for t in range(FRAMES):
        _assert_background_is_the_source(out[t], source[t], ~circles_mask(clip, t), f"frame {t}")
    print(f"faces_in_a_video: worst tracking error {worst:.2f} px")


@pytest.mark.timeout(600)
def test_a_face_leaving_the_frame_and_a_cut_leave_those_frames_as_the_source(video_env):
    out, source = _render(video_env, "fom_video_leave_cut.mp4", "fom/video_leave_cut")
    clip, path = CLIPS["fom_video_leave_cut.mp4"], sway(FRAMES, 0)
    assert len(out) == FRAMES
    _assert_background_is_the_source(out[10], source[10], np.ones((320, 640), bool), "the cut")
    for t in range(FRAMES):
        for i in range(len(clip.faces)):
            x1, _, x2, _ = np.asarray(clip.faces[i].box, float) - clip.offsets[t]
            if t in clip.cut or x2 < 0.4 * (x2 - x1):  # the cut, or most of the face out of the frame
                where = circles_mask(clip, t, faces=[i]) & ~circles_mask(clip, t, faces=[j for j in range(3) if j != i])
                _assert_background_is_the_source(out[t], source[t], where, f"face {i + 1} not seen in frame {t}")
            elif clip.visible(t, i) and 15 < clip.expected(t, i, path)[0] < 625:
                err = np.linalg.norm(mark_near(out[t], clip.source_mark(t, i)) - clip.expected(t, i, path))
                assert err < TOLERANCE_PX, f"face {i + 1}, frame {t}: {err:.2f} px"


def test_bad_source_input_is_a_node_error_and_the_server_goes_on(video_env):
    broken = video_env.run(_prompt("fom_broken.mp4", "fom/video_broken"), timeout=120)
    error = execution_error(broken)
    assert error and "fom_broken.mp4" in error["exception_message"], error
    outside = video_env.run(_prompt("fom_video_pan.mp4", "fom/video_outside", boxes="700,10,800,110"), timeout=120)
    error = execution_error(outside)
    assert error and error["node_type"] == "FOMFacesFromBoxes" and "outside the 640x320" in error["exception_message"]
    still = _prompt("fom_video_pan.mp4", "fom/video_still")
    still["30"] = {"class_type": "LoadImage", "inputs": {"image": "fom_source_image.png"}}
    still["9"]["inputs"]["image"] = ["30", 0]
    error = execution_error(video_env.run(still, timeout=120))
    assert error and error["node_type"] == "FOMPasteFaces" and "paste them onto that video" in error["exception_message"]
    entry = video_env.run(_prompt("fom_video_pan.mp4", "fom/video_after_errors"), timeout=280)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
