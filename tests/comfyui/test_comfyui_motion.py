"""Motion in the real host: the shipped faces_by_hand_two_drivers workflow (two groups of faces typed
by hand, two driving clips, the second paste chained on the first) run over HTTP with the tracking
model (fom_pipeline.testing.tracking_model), a generated photo of five marked faces and two generated
drivers, one swaying sideways and one up and down. Each face's red mark is measured in the decoded
output frames: group A follows driver A and group B driver B, frame by frame, and the streamed VIDEO
moves exactly as the all-IMAGE twin of the same workflow.
"""

from __future__ import annotations

import assets
import cv2
import numpy as np
import pytest
from comfy_host import execution_error
from motion_scene import (
    SceneFace,
    boxes_text,
    driver_frames,
    expected_relative,
    group_photo,
    red_tracks,
    sway,
    tracking_error,
)
from video_checks import read_frames
from workflow_files import api, image_path_twin, with_inputs

from fom_pipeline.testing import write_clip

PHOTO = "fom_motion_group.png"
DRIVERS = {"A": ("fom_motion_sideways.mp4", 0), "B": ("fom_motion_updown.mp4", 1)}
FRAMES = 12
TOLERANCE_PX = 1.0  # photo pixels after two h264 passes (measured: about 0.3)

# Five faces side by side (crop windows 160-200 px, 10 px apart); the workflow animates faces 1, 3, 5
# with driver A and faces 2, 4 with driver B.
FACES = [SceneFace((x + s // 4, 20 + s // 4, x + 3 * s // 4, 20 + 3 * s // 4))
         for x, s in ((0, 160), (170, 200), (380, 160), (550, 180), (740, 160))]
GROUPS = {"A": [0, 2, 4], "B": [1, 3]}


@pytest.fixture(scope="module")
def motion_env(comfy_env):
    """The host with the tracking checkpoint in models/fom/ and the photo and drivers in input/."""
    base = comfy_env.base_dir
    assets.put_tracking_checkpoint(base)
    photo = base / "input" / PHOTO
    if not photo.exists():
        image = group_photo(900, 240, FACES)
        cv2.imwrite(str(photo), np.clip(image[:, :, ::-1] * 255 + 0.5, 0, 255).astype(np.uint8))
    for name, axis in DRIVERS.values():
        if not (base / "input" / name).exists():
            write_clip(base / "input" / name, driver_frames(sway(FRAMES, axis)))
    return comfy_env


def _prompt(prefix: str) -> dict:
    """The shipped workflow pointed at the generated inputs (its groups, pastes and settings kept)."""
    prompt = with_inputs(api("faces_by_hand_two_drivers"), "FOMLoadModel", ckpt_name=assets.TRACKING_CHECKPOINT,
                         device="cpu")
    prompt = with_inputs(prompt, "LoadImage", image=PHOTO)
    prompt = with_inputs(prompt, "FOMFacesFromBoxes", boxes=boxes_text(FACES))
    prompt["6"]["inputs"]["file"], prompt["8"]["inputs"]["file"] = DRIVERS["A"][0], DRIVERS["B"][0]
    assert prompt["4"]["inputs"]["indices"] == "1,3,5" and prompt["5"]["inputs"]["indices"] == "2,4"
    return with_inputs(prompt, "SaveVideo", filename_prefix=prefix)


def _run_tracks(server, prompt: dict) -> np.ndarray:
    entry = server.run(prompt, timeout=280)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    videos = [i for i in entry["outputs"]["17"]["images"] if i["filename"].endswith(".mp4")]
    assert len(videos) == 1, entry["outputs"]
    frames = read_frames(server.output_path(videos[0]))
    assert frames.shape == (FRAMES, 240, 900, 3), frames.shape
    return red_tracks(frames, FACES)


def _assert_groups_follow_their_drivers(tracks: np.ndarray, anchored: bool = True) -> float:
    """Each face's red mark on its own driver's path, frame by frame; ``anchored=False`` compares the
    motion from each track's first frame (a constant offset of the whole picture is allowed)."""
    worst = 0.0
    for group, faces in GROUPS.items():
        axis = DRIVERS[group][1]
        path = sway(FRAMES, axis)
        for i in faces:
            expected, measured = expected_relative(FACES[i], path), tracks[:, i]
            if not anchored:
                expected, measured = expected - expected[0], measured - measured[0]
            err = tracking_error(measured, expected)
            assert err.max() < TOLERANCE_PX, (f"face {i + 1} (group {group}): error per frame {err.round(2)}, "
                                              f"mean offset {np.round((measured - expected).mean(0), 2)}")
            span = np.ptp(measured, axis=0)
            assert span[1 - axis] < TOLERANCE_PX, f"face {i + 1} moved across its driver's axis: {span}"
            worst = max(worst, float(err.max()))
    return worst


@pytest.mark.timeout(600)
def test_each_group_follows_its_own_driver_and_the_image_path_moves_alike(motion_env):
    """The IMAGE twin decodes and re-encodes the frames between and after the pastes; on ComfyUI 0.33
    each such pass moves the red (colour) planes about half a pixel left against ours (chroma siting),
    so the twin is held to the same motion and to a whole-picture offset of at most 1.5 px."""
    streamed = _run_tracks(motion_env, _prompt("fom/motion_stream"))
    worst = _assert_groups_follow_their_drivers(streamed)
    images = _run_tracks(motion_env, with_inputs(image_path_twin(_prompt("fom/motion_images")), "SaveVideo",
                                                 filename_prefix="fom/motion_images"))
    worst_images = _assert_groups_follow_their_drivers(images, anchored=False)
    motion_gap = np.linalg.norm((streamed - streamed[0]) - (images - images[0]), axis=-1)
    assert motion_gap.max() < 0.5, f"the IMAGE path moves differently from the stream by {motion_gap.max():.2f} px"
    offset = np.linalg.norm((images - streamed).mean(axis=0), axis=-1)
    assert offset.max() < 1.5, f"the IMAGE path's faces sit {offset.round(2)} px from the stream's"
    print(f"stream: worst tracking error {worst:.2f} px; IMAGE path: motion {worst_images:.2f} px, "
          f"{motion_gap.max():.2f} px from the stream's, whole-picture offset up to {offset.max():.2f} px")
