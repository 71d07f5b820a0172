"""Faces in a source video, engine level: tracking (fom_pipeline.faces.track) and animation from each
face's own source frame (fom_pipeline.video_source), measured with the tracking model's marks.

The source is a slow pan over a photo of marked faces (tests/video_scene.py), so where every face and
mark is in every source frame is known exactly; the driver sways its red mark. Each face's mark must
sit at its place in that source frame plus the driver's sway, in step, and everything away from the
faces must be that source frame untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
from motion_scene import best_lag, driver_frames, sway, tracking_error
from video_scene import away_and_back, circles_mask, mark_near, other_shot, pan_clip

from fom_pipeline import pipeline as P
from fom_pipeline.errors import InputError
from fom_pipeline.faces.track import steady_tracks, track_faces
from fom_pipeline.streams import AudioTrack, FrameArray, as_uint8
from fom_pipeline.testing import tracking_model, write_clip
from fom_pipeline.video_source import VideoFaceAnimation, first_frame, open_source_video

FRAMES = 12
CROP_SCALE_TOLERANCE = 0.35  # photo px: the marks straight from the engine (measured: under 0.15)


def _boxes(clip):
    return [face.box for face in clip.faces]


def _expected_box(clip, t, i):
    return np.asarray(clip.faces[i].box, float) - [clip.offsets[t], 0, clip.offsets[t], 0]


# ---------------------------------------------------------------------------------------------------
# tracking


def test_faces_are_followed_through_a_pan_to_a_fraction_of_a_pixel_each_keeping_its_number():
    clip = pan_clip(30, speed=1.7)
    tracks = track_faces(FrameArray(clip.array()), _boxes(clip))
    assert tracks.present.all()
    for i in range(len(clip.faces)):
        err = np.abs(tracks.boxes[:, i] - np.stack([_expected_box(clip, t, i) for t in range(30)]))
        assert err.max() < 0.2, (i, err.max())  # each number stays on its own face
        sides = tracks.windows[:, i, 2] - tracks.windows[:, i, 0]
        assert np.ptp(sides) == 0, "the window's size trembles"
        assert np.abs(np.diff(tracks.windows[:, i, 0]) + 1.7).max() <= 1.0, "the window does not follow the pan"


def test_a_face_that_leaves_the_frame_is_dropped_and_found_again_where_it_comes_back():
    clip = pan_clip(60)
    clip.offsets = away_and_back(60, 6.0, 30)  # face 1 leaves on the left and comes back
    tracks = track_faces(FrameArray(clip.array()), _boxes(clip))
    for t in range(60):
        for i in range(3):
            if clip.visible(t, i):
                assert tracks.present[t, i], f"face {i + 1} not followed in frame {t}"
            if tracks.present[t, i]:
                box = _expected_box(clip, t, i)
                assert box[0] >= -0.4 * (box[2] - box[0]), f"face {i + 1} kept while out of frame {t}"
    assert not tracks.present[25:45, 0].any()
    raw = track_faces(FrameArray(clip.array()), _boxes(clip), steady=0)
    back = [t for t in range(45, 60) if clip.visible(t, 0)]
    assert len(back) >= 10
    assert np.abs(raw.boxes[back, 0] - np.stack([_expected_box(clip, t, 0) for t in back])).max() < 0.5


def test_a_hard_cut_drops_every_face_and_a_cut_back_finds_each_again_under_its_number():
    clip = pan_clip(30)
    clip.cut, clip.other = tuple(range(12, 18)), other_shot()
    tracks = track_faces(FrameArray(clip.array()), _boxes(clip), steady=0)
    assert not tracks.present[12:18].any()
    assert tracks.present[:12].all() and tracks.present[18:].all()
    for t in range(18, 30):
        for i in range(3):
            assert np.abs(tracks.boxes[t, i] - _expected_box(clip, t, i)).max() < 0.5, (t, i)


def test_steady_windows_smooth_a_trembling_box_without_lagging_behind_it():
    rng = np.random.default_rng(3)
    t = np.arange(60, dtype=float)
    truth = np.stack([100 + 2 * t, 80 + 0 * t, 200 + 2 * t, 180 + 0 * t], axis=1)
    noisy = truth + rng.normal(0, 1.5, (60, 1)) * [1, 0, 1, 0] + rng.normal(0, 1.5, (60, 1)) * [0, 1, 0, 1]
    raw = steady_tracks(noisy[:, None], (400, 800), steady=0).windows[:, 0]
    calm = steady_tracks(noisy[:, None], (400, 800)).windows[:, 0]
    wanted = steady_tracks(truth[:, None], (400, 800), steady=0).windows[:, 0]
    tremble = lambda w: np.abs(np.diff(w[:, 0], 2)).mean()  # noqa: E731
    assert tremble(calm) < 0.35 * tremble(raw)
    assert np.abs(calm - wanted).max() <= 2, "the steady window lags or strays"


def test_boxes_for_frame_0_are_checked():
    clip = pan_clip(3)
    with pytest.raises(InputError, match="lies outside the 640x320 image"):
        track_faces(FrameArray(clip.array()), [(700, 10, 800, 110)])


# ---------------------------------------------------------------------------------------------------
# animation


@pytest.fixture(scope="module")
def model():
    return tracking_model()


@pytest.fixture(scope="module")
def path() -> np.ndarray:
    return sway(FRAMES, 0)


@pytest.fixture(scope="module")
def driving(model, path):
    return P.driving_keypoints(model, FrameArray(np.stack(list(driver_frames(path)))))


def _render(model, clip, driving, **options):
    source = FrameArray(clip.array())
    tracks = track_faces(source, _boxes(clip))
    animation = VideoFaceAnimation(model, source, tracks, driving, batch_size=5, **options)
    pasted = P.PastedFrames(source, tracks, animation)
    return source.frames, np.concatenate(list(pasted.chunks())), pasted


@pytest.mark.parametrize("axis", [0, 1], ids=["sideways", "up-down"])
def test_each_face_s_mark_is_at_its_source_frame_place_plus_the_driver_s_sway(model, axis):
    path = sway(FRAMES, axis)
    driving = P.driving_keypoints(model, FrameArray(np.stack(list(driver_frames(path)))))
    clip = pan_clip(FRAMES)
    source, out, _ = _render(model, clip, driving, relative=True, adapt_scale=True)
    assert len(out) == FRAMES
    worst = 0.0
    for i in range(3):
        expected = np.stack([clip.expected(t, i, path) for t in range(FRAMES)])
        measured = np.array([mark_near(out[t], clip.source_mark(t, i)) for t in range(FRAMES)], float)
        err = tracking_error(measured, expected)
        assert err.max() < CROP_SCALE_TOLERANCE, (i, err.round(2))
        assert best_lag(measured, expected) == 0
        worst = max(worst, float(err.max()))
        motion = measured - np.stack([clip.source_mark(t, i) for t in range(FRAMES)])
        assert np.ptp(motion[:, 1 - axis]) < 0.3, "moved across the driver's axis"
    for t in range(FRAMES):  # away from the faces: the source frame itself
        away = ~circles_mask(clip, t)
        assert np.array_equal(out[t][away], source[t][away]), t
    print(f"video source, engine ({'sideways' if axis == 0 else 'up-down'}): worst tracking error {worst:.2f} px")


def test_a_face_not_seen_is_not_pasted_and_the_others_still_follow(model, driving, path):
    clip = pan_clip(FRAMES)
    clip.offsets = away_and_back(FRAMES, 20.0, 8)  # face 1 leaves the frame from about frame 7
    clip.cut, clip.other = (10,), other_shot()
    source, out, pasted = _render(model, clip, driving, relative=True)
    tracks = pasted.tracks
    assert not tracks.present[10].any()
    assert np.array_equal(out[10], source[10]), "a frame of another shot got a face"
    for t in range(FRAMES):
        for i in range(3):
            if not tracks.present[t, i] or not 15 < clip.expected(t, i, path)[0] < 625:
                continue  # (a mark pushed past the frame's edge by the sway is cut off there)
            err = np.linalg.norm(mark_near(out[t], clip.source_mark(t, i)) - clip.expected(t, i, path))
            assert err < CROP_SCALE_TOLERANCE, (t, i, err)
    lost = [t for t in range(FRAMES) if not tracks.present[t, 0]]
    assert len(lost) >= 3
    for t in lost:  # where face 1 is not followed, its place is the source frame's
        where = circles_mask(clip, t, faces=[0]) & ~circles_mask(clip, t, faces=[1, 2])
        assert np.array_equal(out[t][where], source[t][where]), t


def test_output_follows_the_source_rate_ends_with_the_shorter_clip_and_picks_the_audio(model, driving, path):
    clip = pan_clip(30)
    source = FrameArray(clip.array(), fps=25.0, audio=AudioTrack("source.wav"))
    slow = P.DrivingKeypoints(driving.keypoints, fps=12.5, audio=AudioTrack("driver.wav"))  # 12 frames: 0.96 s
    tracks = track_faces(source, _boxes(clip))
    for choice, track in (("source", "source.wav"), ("driving", "driver.wav"), ("none", None)):
        animation = VideoFaceAnimation(model, source, tracks, slow, relative=True, audio=choice)
        pasted = P.PastedFrames(source, tracks, animation)
        assert (pasted.fps, pasted.frame_count) == (25.0, 24)  # 0.96 s at the source's rate
        assert (pasted.audio.path if pasted.audio else None) == track
    animation = VideoFaceAnimation(model, source, tracks, slow, relative=True, batch_size=8)
    out = np.concatenate(list(P.PastedFrames(source, tracks, animation).chunks()))
    assert len(out) == 24
    for t in (0, 5, 13, 23):  # driving frame t // 2 drives source frame t
        err = np.linalg.norm(mark_near(out[t], clip.source_mark(t, 1)) - clip.expected(t, 1, np.repeat(path, 2, 0)))
        assert err < CROP_SCALE_TOLERANCE, (t, err)
    with pytest.raises(InputError, match="audio 'driver' is unknown"):
        VideoFaceAnimation(model, source, tracks, slow, audio="driver")


def test_face_groups_follow_their_own_drivers_through_chained_pastes(model, driving, path):
    """Faces 1 and 3 follow a sideways driver, face 2 an up-and-down one; the second paste goes onto the
    first paste's frames, as FOM Select Faces and a chained FOM Paste Faces do in ComfyUI."""
    up_down = sway(FRAMES, 1)
    other = P.driving_keypoints(model, FrameArray(np.stack(list(driver_frames(up_down)))))
    clip = pan_clip(FRAMES)
    source = FrameArray(clip.array())
    tracks = track_faces(source, _boxes(clip))
    first = P.PastedFrames(source, tracks.select([0, 2]),
                           VideoFaceAnimation(model, source, tracks.select([0, 2]), driving, relative=True))
    both = P.PastedFrames(first, tracks.select([1]),
                          VideoFaceAnimation(model, source, tracks.select([1]), other, relative=True))
    out = np.concatenate(list(both.chunks()))
    for i, face_path in ((0, path), (1, up_down), (2, path)):
        for t in range(FRAMES):
            err = np.linalg.norm(mark_near(out[t], clip.source_mark(t, i)) - clip.expected(t, i, face_path))
            assert err < CROP_SCALE_TOLERANCE, (i, t, err)


def test_a_per_frame_mask_batch_pastes_each_frame_through_its_own_mask(model, driving):
    clip = pan_clip(6)
    source = FrameArray(clip.array())
    tracks = track_faces(source, _boxes(clip))
    masks = np.zeros((6, 320, 640), np.float32)
    for t in range(6):  # a square over face 2's middle, moving with the pan
        x1, y1, x2, y2 = (int(v) for v in _expected_box(clip, t, 1))
        masks[t, y1:y2, x1:x2] = 1.0
    animation = VideoFaceAnimation(model, source, tracks, driving, relative=True, batch_size=3)
    pasted = P.PastedFrames(source, tracks, animation, mask=masks, feather=0)
    assert pasted.covered == [1]
    out = np.concatenate(list(pasted.chunks()))
    for t in range(6):
        changed = np.abs(out[t].astype(int) - source.frames[t]).max(-1) > 0
        others = circles_mask(clip, t, faces=[0, 2])
        assert not (changed & ~others & ~(masks[t] > 0)).any(), "face 2 pasted outside its mask"
    with pytest.raises(InputError, match="3 masks for 6 frames"):
        P.PastedFrames(source, tracks, animation, mask=masks[:3])


def test_tracked_faces_go_onto_their_video_not_a_photo(model, driving):
    clip = pan_clip(4)
    source = FrameArray(clip.array())
    tracks = track_faces(source, _boxes(clip))
    animation = VideoFaceAnimation(model, source, tracks, driving)
    with pytest.raises(InputError, match="paste them onto that video"):
        P.PastedFrames(clip.photo, tracks, animation)


def test_animate_frames_of_a_still_source_equals_animating_the_photo(model, driving):
    crop = as_uint8(pan_clip(1).photo[50:250, 30:230].copy())
    photo = model.animate(crop, driving.keypoints, relative=True, adapt_scale=False).numpy()
    frames = model.animate_frames(np.repeat(crop[None], FRAMES, 0), driving.keypoints, driving.keypoints[0]).numpy()
    assert np.abs(photo - frames).max() < 1e-5


# ---------------------------------------------------------------------------------------------------
# bad input


def test_a_still_picture_an_empty_file_and_a_broken_file_are_refused_in_one_line(tmp_path):
    import cv2

    picture = tmp_path / "photo.png"
    cv2.imwrite(str(picture), np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(InputError, match=r"source video .*photo.png is a still picture, not a video"):
        open_source_video(picture)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    for bad in (empty, broken, tmp_path / "missing.mp4"):
        with pytest.raises(InputError) as err:
            open_source_video(bad)
        assert bad.name in str(err.value) and "\n" not in str(err.value)
    good = tmp_path / "clip.mp4"
    write_clip(good, pan_clip(3).frames())
    clip = open_source_video(good)
    assert (clip.frame_count, clip.width, clip.height) == (3, 640, 320)
    assert first_frame(clip).shape == (320, 640, 3)
