"""The streaming pipeline (fom_pipeline.pipeline / streams): chunked sources give the same frames as
whole arrays, lazy steps compute only when read, cancel leaves nothing behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fom_pipeline import faces as F
from fom_pipeline import pipeline as P
from fom_pipeline.errors import InputError
from fom_pipeline.streams import FrameArray, Trimmed, VideoFile, as_uint8, regroup
from fom_pipeline.video import probe


@pytest.fixture(scope="module")
def driving(media_dir) -> np.ndarray:
    """12 uint8 frames of the seed's cropped driving video."""
    return np.concatenate(list(VideoFile(media_dir / "fom_dv.mp4", max_frames=12).chunks(5)))


@pytest.fixture(scope="module")
def photo(media_dir) -> np.ndarray:
    from fom_pipeline.pictures import read_image

    return read_image(media_dir / "fom_source_image_multi_person.jpg")


BOXES = [(190, 170, 320, 305), (600, 185, 700, 300), (1085, 270, 1190, 400)]


def test_regroup_gives_exact_sizes_and_keeps_every_frame():
    chunks = [np.full((n, 2, 2, 3), i, np.uint8) for i, n in enumerate([3, 1, 5, 2])]
    out = list(regroup(iter(chunks), 4))
    assert [len(c) for c in out] == [4, 4, 3]
    assert np.concatenate(out)[:, 0, 0, 0].tolist() == [0, 0, 0, 1, 2, 2, 2, 2, 2, 3, 3]


def test_video_file_reads_in_chunks_with_start_limit_and_audio(media_dir, driving):
    clip = VideoFile(media_dir / "fom_dv.mp4", start=0.0, max_frames=12)
    assert (clip.width, clip.height, clip.frame_count, clip.fps) == (256, 256, 12, pytest.approx(30.0))
    assert clip.audio is None  # fom_dv.mp4 has no audio track
    sizes = [len(c) for c in clip.chunks(5)]
    assert sizes == [5, 5, 2]
    later = VideoFile(media_dir / "fom_dv.mp4", start=0.2, max_frames=4)  # 6 frames in at 30 fps
    assert np.abs(np.concatenate(list(later.chunks(8))).astype(int) - driving[6:10]).mean() < 1.0
    with pytest.raises(InputError, match="past the end"):
        VideoFile(media_dir / "fom_dv.mp4", start=10_000)


def test_trimmed_and_frame_array_views(driving):
    whole = FrameArray(driving, fps=30)
    part = Trimmed(whole, 3, 5)
    assert part.frame_count == 5
    got = np.concatenate(list(part.chunks(2)))
    assert np.array_equal(got, driving[3:8])


def test_keypoints_stream_equals_whole_batch(tiny_model, driving):
    streamed = P.driving_keypoints(tiny_model, FrameArray(driving, fps=30), batch_size=5)
    whole = tiny_model.extract_keypoints(driving.astype(np.float32) / 255.0)
    assert len(streamed) == 12 and streamed.fps == 30.0
    assert torch.allclose(streamed.keypoints.value, whole.value, atol=1e-6)


def test_animation_is_lazy_and_pastes_match_the_whole_array_path(tiny_model, driving, photo):
    records = F.make_faces(photo.shape[:2], BOXES, size=tiny_model.image_size)
    crops = F.crop_faces(photo, records)
    kp = P.driving_keypoints(tiny_model, FrameArray(driving, fps=30))
    calls = []
    real = tiny_model.animate_batches

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    tiny_model.animate_batches = counting
    try:
        animation = P.FaceAnimation(tiny_model, crops, kp, batch_size=5)
        pasted = P.PastedFrames(photo, records, animation, ratio=0.4)
        assert calls == [] and (pasted.width, pasted.height, pasted.frame_count) == (1200, 900, 12)
        streamed = np.concatenate(list(pasted.chunks()))
        assert len(calls) == 3  # one stream per face, all in lockstep
        one_face = np.concatenate(list(P.AnimatedFace(animation, 1).chunks()))
        assert len(calls) == 4, "a single face's video animates that face alone"
    finally:
        del tiny_model.animate_batches
    whole = np.stack([tiny_model.animate(crop, kp.keypoints).numpy() for crop in crops])
    expected = as_uint8(F.paste_faces(photo, records, whole, ratio=0.4))
    assert streamed.shape == expected.shape == (12, 900, 1200, 3)
    assert np.abs(streamed.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(one_face.astype(int) - as_uint8(whole[1].copy()).astype(int)).max() <= 1
    # the faces were replaced, the background was not touched
    changed = np.abs(streamed.astype(int) - photo.astype(int))
    x1, y1, x2, y2 = BOXES[0]
    assert changed[:, y1 + 30 : y2 - 30, x1 + 30 : x2 - 30].mean() > 5.0
    assert changed[:, :100, 400:600].max() == 0


def test_chained_paste_runs_both_groups_in_lockstep(tiny_model, driving, photo):
    records = F.make_faces(photo.shape[:2], BOXES, size=tiny_model.image_size)
    crops = F.crop_faces(photo, records)
    kp_a = P.driving_keypoints(tiny_model, FrameArray(driving, fps=30))
    kp_b = P.driving_keypoints(tiny_model, FrameArray(driving[::-1].copy(), fps=30))
    first = P.PastedFrames(photo, records[:1], P.FaceAnimation(tiny_model, crops[:1], kp_a, batch_size=4))
    second = P.PastedFrames(first, records[1:], P.FaceAnimation(tiny_model, crops[1:], kp_b, batch_size=5))
    chained = np.concatenate(list(second.chunks()))
    a = np.stack([tiny_model.animate(crops[0], kp_a.keypoints).numpy()])
    b = np.stack([tiny_model.animate(c, kp_b.keypoints).numpy() for c in crops[1:]])
    expected = as_uint8(F.paste_faces(F.paste_faces(photo, records[:1], a), records[1:], b))
    assert chained.shape == (12, 900, 1200, 3)
    assert np.abs(chained.astype(int) - expected.astype(int)).max() <= 1


def test_paste_checks_before_any_network_runs(tiny_model, driving, photo):
    records = F.make_faces(photo.shape[:2], BOXES, size=64)
    kp = P.driving_keypoints(tiny_model, FrameArray(driving[:2], fps=30))
    animation = P.FaceAnimation(tiny_model, F.crop_faces(photo, records), kp)
    with pytest.raises(InputError, match="ratio 1.5 is out of range"):
        P.PastedFrames(photo, records, animation, ratio=1.5)
    with pytest.raises(InputError, match="2 face records"):
        P.PastedFrames(photo, records[:2], animation)
    with pytest.raises(InputError, match="1200x900 picture but the frames are 256x256"):
        P.PastedFrames(driving[0], records, animation)


def test_write_video_is_atomic_and_cancel_leaves_nothing(tmp_path, tiny_model, driving, media_dir):
    clip = FrameArray(driving, fps=30)
    out = tmp_path / "clip.mp4"
    writer = P.write_video(clip, out, chunk=5)
    assert writer.frames_written == 12 and probe(out)["video"]["size"] == (256, 256)

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        if done >= 5:
            raise Cancelled

    again = tmp_path / "cancelled.mp4"
    with pytest.raises(Cancelled):
        P.write_video(clip, again, chunk=5, progress=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_driving_window_samples_about_five_frames_a_second(media_dir):
    clip = VideoFile(media_dir / "lp_driving_d0.mp4")  # 25 fps, 78 frames
    assert P.detection_stride(clip) == 5
    assert P.detection_stride(clip, every=2) == 2
    long = FrameArray(np.zeros((3000, 32, 32, 3), np.uint8), fps=25)
    assert P.detection_stride(long) == 10  # at most 300 frames are looked at


def test_cropped_driving_frames_stream(media_dir):
    clip = VideoFile(media_dir / "lp_driving_d0.mp4", max_frames=6)
    cropped = P.CroppedFrames(clip, (96, 64, 416, 384), 128)
    frames = np.concatenate(list(cropped.chunks(4)))
    assert frames.dtype == np.uint8 and frames.shape == (6, 128, 128, 3)
    whole = np.concatenate(list(clip.chunks(8)))
    expected = as_uint8(F.crop_driving_frames(whole.astype(np.float32) / 255.0, (96, 64, 416, 384), 128))
    assert np.abs(frames.astype(int) - expected.astype(int)).max() <= 1
