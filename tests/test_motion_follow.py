"""Motion arrives where it should: the tracking model (fom_pipeline.testing.tracking_model) moves a
face's red mark exactly as the driving clip's red mark moves, so these tests measure the motion in
the output frames instead of checking that something changed.

Engine: the constructed weights behave the same in the inference form (folded) and the trained form
(the plain modules) and after a round trip through .safetensors / .pdparams, and the two warp borders differ only at the crop border.
Command line (real subprocess, real ffmpeg, generated photos and clips): every face of a group
follows the driver (right axis, amplitude, no lag, no frame lost), relative against absolute,
adapt_scale, the reference frame (an index, best), both warp borders and the mobile model.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from kit import run_cli
from motion_scene import (
    CROP,
    SceneFace,
    best_lag,
    boxes_text,
    drift,
    driver_frames,
    expected_relative,
    group_photo,
    hull_ratio,
    red_tracks,
    sway,
    tracking_error,
)

from fom_pipeline import load_model
from fom_pipeline.keypoints import Keypoints, normalize_keypoints
from fom_pipeline.testing import (
    FACE_MARKS,
    draw_mark,
    find_mark,
    marked_face,
    tracking_model,
    write_clip,
    write_model_pdparams,
)
from fom_pipeline.video import iter_video_frames

FRAMES = 12
TOLERANCE_PX = 1.0  # photo pixels, after the driver's and the output's h264 (measured: under 0.3)
CROP_TOLERANCE_PX = 0.35  # crop pixels, straight from the engine (measured: under 0.2)


# ---------------------------------------------------------------------------------------------------
# engine


def _crop_track(frames) -> np.ndarray:
    return np.array([find_mark(f) for f in np.asarray(frames)])


@pytest.fixture(scope="module")
def sway_frames() -> np.ndarray:
    return np.stack(list(driver_frames(sway(FRAMES, 0))))


def test_find_mark_gives_the_centre_of_a_drawn_mark_to_a_fraction_of_a_pixel():
    for centre in [(40.0, 50.0), (61.37, 20.81), (100.5, 99.25)]:
        image = np.full((128, 160, 3), 0.5, np.float32)
        draw_mark(image, centre, "green", 6.0)
        draw_mark(image, (20, 110), "red", 5.0)  # another colour is not counted
        assert find_mark(image, "green") == pytest.approx(centre, abs=0.02)
    assert find_mark(np.full((64, 64, 3), 0.5, np.float32), "red") is None


def _trained_form_frames(model, source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """The networks as the checkpoint holds them (model.generator / model.kp_detector, the plain
    modules, with autograd on so no inference shortcut applies), driven relative to the first frame."""
    with torch.enable_grad():
        x = torch.from_numpy(source).permute(2, 0, 1)[None]
        kp_source = Keypoints.from_dict(model.kp_detector(x))
        kp_driving = Keypoints.from_dict(model.kp_detector(torch.from_numpy(driving).permute(0, 3, 1, 2)))
        kp = normalize_keypoints(kp_source, kp_driving, kp_driving[0], relative=True, adapt_scale=False)
        out = model.generator(x, kp.as_dict(), kp_source.as_dict())["prediction"]
    return out.detach().permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("mobile", [False, True], ids=["vox", "vox-mobile"])
def test_the_mark_follows_the_driver_in_the_inference_and_trained_forms_and_saved_files(mobile, sway_frames,
                                                                                         tmp_path):
    model = tracking_model(mobile=mobile)
    path = sway(FRAMES, 0)
    source = marked_face(CROP, {**FACE_MARKS, "red": (112.0, 176.0)})
    fast = model.animate(source, model.extract_keypoints(sway_frames), adapt_scale=False).numpy()
    expected = np.array([112.0, 176.0]) + (path - path[0])
    err = np.linalg.norm(_crop_track(fast) - expected, axis=1)
    assert err.max() < CROP_TOLERANCE_PX, err.round(3)
    print(f"engine ({'mobile' if mobile else 'vox'}): tracking error max {err.max():.2f} crop px")
    assert np.abs(_trained_form_frames(model, source, sway_frames) - fast).max() < 1e-4
    model.save(tmp_path / "t.safetensors")
    write_model_pdparams(tmp_path / "t.pdparams", model)
    for name, border in (("t.safetensors", "plain"), ("t.pdparams", "paddlegan")):
        loaded = load_model(tmp_path / name, precision="fp32")
        assert (loaded.is_mobile, loaded.warp_border) == (mobile, border)
        frames = loaded.animate(source, loaded.extract_keypoints(sway_frames), adapt_scale=False).numpy()
        centre = slice(40, 216)  # PaddleGAN's border keeps the crop's edge still; the face is inside
        assert np.abs(frames[:, centre, centre] - fast[:, centre, centre]).max() < 1e-4, name


def test_the_animated_crop_keeps_the_photo_s_colours():
    """The generator hands the warped crop back through its closing sigmoid within a few levels (flat
    areas of background, hair, skin and the marks' centres; edges are softer: the picture passes
    through the encoder's quarter-size features)."""
    model = tracking_model()
    source = marked_face(CROP)
    out = model.animate(source, model.extract_keypoints(np.stack([source] * 2))).numpy()
    for rows, cols in ((slice(230, 250), slice(10, 40)), (slice(52, 68), slice(62, 76)),
                       (slice(194, 212), slice(110, 146)), (slice(170, 175), slice(126, 131))):
        assert np.abs(out[:, rows, cols] - source[rows, cols]).max() < 5 / 255, (rows, cols)


def test_paddlegan_border_keeps_the_crop_edge_still_where_plain_moves_it(sway_frames):
    """Both warp borders move the face alike; PaddleGAN's inference mode pins a band along the crop
    border (its deformation blends to the identity there), the original FOMM's does not."""
    source = marked_face(CROP)
    source[100:156, :6] = 0.1  # a dark bar on the crop's left edge, away from every mark
    outs = {}
    for border in ("plain", "paddlegan"):
        model = tracking_model(warp_border=border)
        outs[border] = model.animate(source, model.extract_keypoints(sway_frames), adapt_scale=False).numpy()
    np.testing.assert_allclose(_crop_track(outs["plain"]), _crop_track(outs["paddlegan"]), atol=0.05)
    moved = np.abs(sway(FRAMES, 0)[:, 0] - sway(FRAMES, 0)[0, 0]) > 10
    edge = np.s_[:, 100:156, :6]  # compared with frame 0, where the driver has not moved yet

    def change(frames):
        return np.abs(frames[edge] - frames[0][edge[1:]]).mean(axis=(1, 2, 3))

    assert change(outs["paddlegan"]).max() < 0.01, change(outs["paddlegan"]).round(3)
    assert (change(outs["plain"])[moved] > 0.1).all(), change(outs["plain"]).round(3)


# ---------------------------------------------------------------------------------------------------
# command line


def _save_png(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), np.clip(image[:, :, ::-1] * 255 + 0.5, 0, 255).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("motion")


@pytest.fixture(scope="module")
def checkpoint(work) -> Path:
    path = work / "tracking.safetensors"
    tracking_model().save(path)
    return path


def _driver(work: Path, name: str, path: np.ndarray) -> Path:
    clip = work / f"{name}.mp4"
    if not clip.exists():
        write_clip(clip, driver_frames(path))
    return clip


def _animate(work: Path, photo: np.ndarray, faces: list[SceneFace], driver: Path, weights: Path, name: str,
             *flags) -> np.ndarray:
    """Run the command on a generated photo; the decoded output frames, uint8 RGB [T, H, W, 3]."""
    source = _save_png(work / f"{name}.png", photo)
    result = run_cli("--source_image", source, "--driving_video", driver, "--faces", boxes_text(faces),
                  "--multi_person", "--weight_path", weights, "--cpu", "--quiet", "--batch_size", 4,
                  "--output", work, "--filename", f"{name}.mp4", *flags)
    assert result.returncode == 0, result.stderr
    return np.concatenate(list(iter_video_frames(work / f"{name}.mp4")))


def _assert_follows(measured: np.ndarray, expected: np.ndarray, label: str) -> float:
    """Every frame there (none lost), each within TOLERANCE_PX of its own expected place (no lag)."""
    assert len(measured) == len(expected), f"{label}: {len(measured)} frames for {len(expected)} driving frames"
    err = tracking_error(measured, expected)
    assert err.max() < TOLERANCE_PX, f"{label}: error per frame {err.round(2)}"
    assert best_lag(measured, expected) == 0, label
    print(f"{label}: tracking error max {err.max():.2f} px, mean {err.mean():.2f} px")
    return float(err.max())


GROUP = [SceneFace((60, 80, 160, 180)), SceneFace((300, 60, 420, 180)), SceneFace((540, 100, 620, 180))]


@pytest.mark.parametrize("axis", [0, 1], ids=["sideways", "up-down"])
def test_every_face_of_a_group_follows_the_driver(work, checkpoint, axis):
    """Three faces of different sizes, one driver: each red mark moves as the driver's, times its own
    crop scale, along the driver's axis only, in step, in every frame."""
    path = sway(FRAMES, axis)
    frames = _animate(work, group_photo(700, 280, GROUP), GROUP, _driver(work, f"sway{axis}", path), checkpoint,
                      f"group{axis}", "--relative", "--warp_border", "plain")
    tracks = red_tracks(frames, GROUP)
    for i, face in enumerate(GROUP):
        expected = expected_relative(face, path)
        _assert_follows(tracks[:, i], expected, f"face {i + 1}")
        motion = tracks[:, i] - tracks[0, i]
        span = np.ptp(motion, axis=0)
        assert span[axis] == pytest.approx(np.ptp(path[:, axis]) * face.scale, rel=0.03), span
        assert span[1 - axis] < TOLERANCE_PX, f"face {i + 1} moved across the driver's axis: {span}"


def test_relative_moves_by_the_driver_s_displacement_absolute_onto_its_place(work, checkpoint):
    """The source's red mark sits 24 px left of and 8 px below where the driver's starts: relative keeps
    that offset, absolute (the seed's default) puts the mark where the driver's is."""
    face = SceneFace((100, 60, 200, 160), {**FACE_MARKS, "red": (104.0, 180.0)})
    path = sway(FRAMES, 0)
    driver = _driver(work, "sway0", path)
    photo = group_photo(300, 280, [face])
    rel = red_tracks(_animate(work, photo, [face], driver, checkpoint, "relative", "--relative"), [face])[:, 0]
    absolute = red_tracks(_animate(work, photo, [face], driver, checkpoint, "absolute"), [face])[:, 0]
    _assert_follows(rel, expected_relative(face, path), "relative")
    _assert_follows(absolute, face.to_photo(path), "absolute")
    offset = (np.array(FACE_MARKS["red"]) - face.marks["red"]) * face.scale
    np.testing.assert_allclose((absolute - rel).mean(axis=0), offset, atol=TOLERANCE_PX)


def test_adapt_scale_scales_each_face_s_motion_by_its_mark_spread(work, checkpoint):
    """With --adapt_scale a face whose marks span 0.6 of the driver's triangle moves 0.6 as far; a face
    with the driver's own spread moves as far as the driver."""
    centre = np.mean([FACE_MARKS[c] for c in ("red", "green", "blue")], axis=0)
    small = {c: tuple(centre + 0.6 * (np.asarray(p) - centre)) for c, p in FACE_MARKS.items()}
    faces = [SceneFace((60, 60, 160, 160)), SceneFace((300, 60, 400, 160), small)]
    path = sway(FRAMES, 0)
    frames = _animate(work, group_photo(460, 220, faces), faces, _driver(work, "sway0", path), checkpoint,
                      "adapt", "--relative", "--adapt_scale")
    tracks = red_tracks(frames, faces)
    for i, face in enumerate(faces):
        factor = hull_ratio(face.marks, FACE_MARKS)
        assert factor == pytest.approx([1.0, 0.6][i])
        _assert_follows(tracks[:, i], expected_relative(face, path, factor=factor), f"face {i + 1}")


def test_reference_frame_by_index_and_best(work, checkpoint):
    """--best_frame N drives from frame N (the face is as in the photo at N); --find_best_frame picks
    the frame whose marks are shaped like the face's own (frame 8 here: the face copies its layout)."""
    path = drift(FRAMES)
    driver = _driver(work, "drift", path)
    best = 8
    faces = [SceneFace((60, 60, 160, 160), {**FACE_MARKS, "red": tuple(path[best])})]
    photo = group_photo(260, 220, faces)
    by_index = red_tracks(_animate(work, photo, faces, driver, checkpoint, "ref_index", "--relative",
                                   "--best_frame", 5), faces)[:, 0]
    _assert_follows(by_index, expected_relative(faces[0], path, reference=5), "--best_frame 5")
    by_pose = red_tracks(_animate(work, photo, faces, driver, checkpoint, "ref_best", "--relative",
                                  "--find_best_frame"), faces)[:, 0]
    _assert_follows(by_pose, expected_relative(faces[0], path, reference=best), "--find_best_frame")


@pytest.mark.parametrize("mobile", [False, True], ids=["vox", "vox-mobile"])
def test_paddlegan_weights_and_border_follow_the_driver(work, mobile):
    """A .pdparams checkpoint (PaddleGAN's layout: auto picks PaddleGAN's warp border), standard and
    mobile: the group follows the driver as with the original border."""
    weights = work / ("vox-mobile.pdparams" if mobile else "vox-cpk.pdparams")
    write_model_pdparams(weights, tracking_model(mobile=mobile))
    assert load_model(weights).warp_border == "paddlegan"
    path = sway(FRAMES, 1)
    frames = _animate(work, group_photo(700, 280, GROUP), GROUP, _driver(work, "sway1", path), weights,
                      f"paddle_{'mobile' if mobile else 'vox'}", "--relative")
    tracks = red_tracks(frames, GROUP)
    for i, face in enumerate(GROUP):
        _assert_follows(tracks[:, i], expected_relative(face, path), f"face {i + 1}")


def test_tracking_model_needs_rgb_and_room_for_colours():
    config = tracking_model().config
    config["generator_params"].update(block_expansion=2, max_features=2)
    with pytest.raises(ValueError, match="3 or more"):
        tracking_model(config)
