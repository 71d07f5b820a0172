"""Footage as users have it, read by the engine: every frame at its real time, counts announced that are
counts decoded, rotation, and every frame kept when audio is muxed.

Every clip is generated here with imageio-ffmpeg's ffmpeg (tests/footage.py); each of its frames
carries its own index, so the tests check which source frame lands in which output slot.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from footage import code_frame, frame_times, make_clip, read_code

from fom_pipeline.streams import FrameArray, VideoFile, retime, select_frames
from fom_pipeline.video import VideoWriter, ffmpeg_exe, iter_video_frames, probe, read_video_meta

# A phone-like variable-rate clip: 1 s at 30 fps, 1 s at 10 fps (the phone slowed down), 1.2 s at 20 fps.
VFR = [(30, 30.0), (10, 10.0), (24, 20.0)]  # 64 frames in 3.2 s: 20 fps on average


def codes(source) -> list[int]:
    return [read_code(frame) for chunk in source.chunks(16) for frame in chunk]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """One clip of each kind users bring (generated once for the module)."""
    folder = tmp_path_factory.mktemp("footage")
    cut_from = make_clip(folder / "bframes_full.mp4", [(90, 30.0)], "h264")
    cut = folder / "bframes_edit_list.mp4"  # starts mid-GOP: an edit list hides the frames before 0.5 s
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", "0.5", "-i", str(cut_from), "-c", "copy", str(cut)],
                   check=True)
    return {
        "vfr": make_clip(folder / "vfr.mp4", VFR, "h264"),
        "bframes_edit_list": cut,
        "phone_hevc": make_clip(folder / "phone.mp4", [(45, 30.0)], "hevc10", audio_seconds=1.5, rotation=90),
        "av1_webm": make_clip(folder / "clip.webm", [(36, 24.0)], "av1"),
        "gif": make_clip(folder / "clip.gif", [(10, 10.0), (10, 5.0), (5, 20.0)], "gif"),
    }


# what each clip holds: (first code, frames, seconds)
KINDS = {
    "vfr": (0, 64, 3.2),
    "bframes_edit_list": (15, 75, 2.5),
    "phone_hevc": (0, 45, 1.5),
    "av1_webm": (0, 36, 1.5),
    "gif": (0, 25, 3.25),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_announced_count_is_decoded_count_and_duration_is_the_clips(clips, kind):
    first, frames, seconds = KINDS[kind]
    meta = read_video_meta(clips[kind])
    clip = VideoFile(clips[kind])
    decoded = sum(len(chunk) for chunk in clip.chunks(16))
    assert clip.frame_count == meta.frame_count == decoded
    assert decoded == frames  # at the clip's own average rate: as many frames as it has
    assert decoded / clip.fps == pytest.approx(seconds, abs=0.5 / clip.fps)  # real time
    assert meta.duration == pytest.approx(seconds, abs=0.011)
    # every decoded frame once (no constant-rate duplicates), in order, as the packets list them
    turn = -1 if kind == "phone_hevc" else 0
    raw = [read_code(np.rot90(f, turn)) for chunk in iter_video_frames(clips[kind]) for f in chunk]
    assert raw == list(range(first, first + frames))
    assert meta.timeline.count == frames


SEGMENTS = {"vfr": VFR, "bframes_edit_list": [(75, 30.0)], "phone_hevc": [(45, 30.0)], "av1_webm": [(36, 24.0)],
            "gif": [(10, 10.0), (10, 5.0), (5, 20.0)]}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("start", [0.3, 1.0])
def test_a_window_takes_the_frames_on_screen_at_each_slot(clips, kind, start):
    """From ``start`` s (ffmpeg seeks, then exactly the right frames are kept), slot k shows the frame
    on screen at start + (k + 1/2) / fps, by the times the clip was made with."""
    first = KINDS[kind][0]
    times = frame_times(SEGMENTS[kind])
    clip = VideoFile(clips[kind], start=start, max_frames=12)
    turn = -1 if kind == "phone_hevc" else 0
    got = [read_code(np.rot90(f, turn)) for chunk in clip.chunks(5) for f in chunk]
    expected = [first + int(np.searchsorted(times, start + (k + 0.5) / clip.fps + 0.002, side="right")) - 1
                for k in range(12)]
    assert clip.frame_count == 12 and got == expected


def test_constant_rate_clips_map_each_frame_to_itself(clips):
    assert codes(VideoFile(clips["av1_webm"])) == list(range(36))
    assert codes(VideoFile(clips["bframes_edit_list"])) == list(range(15, 90))
    assert VideoFile(clips["av1_webm"]).fps == 24.0  # millisecond timestamps snap to the nominal rate


def test_variable_rate_clip_plays_in_real_time(clips):
    clip = VideoFile(clips["vfr"])
    assert clip.fps == 20.0 and clip.frame_count == 64
    got = codes(clip)
    # slot k shows the source frame on screen at (k + 1/2) / 20 s
    expected = [int(np.floor((k + 0.5) * 1.5)) for k in range(20)]  # 1 s at 30 fps: every 2 of 3 frames
    expected += [30 + (k // 2) for k in range(20)]  # 1 s at 10 fps: each frame twice
    expected += list(range(40, 64))  # 1.2 s at 20 fps: one to one
    assert got == expected
    times = frame_times(VFR)
    for k, code in enumerate(got):  # the source frame is the one on screen in the slot's middle
        middle = (k + 0.5) / 20
        assert times[code] <= middle < (times[code + 1] if code + 1 < len(times) else 3.2)


def test_rate_window_and_retime(clips):
    at_10 = VideoFile(clips["vfr"], fps=10)
    assert at_10.frame_count == 32 and at_10.fps == 10.0
    assert codes(at_10)[10:20] == [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]  # 10 fps part: one to one
    window = VideoFile(clips["vfr"], start=1.0, duration=1.0)  # the slow part, at 20 fps
    assert window.frame_count == 20
    assert codes(window) == [30 + k // 2 for k in range(20)]
    assert window.audio is None
    assert codes(retime(window, 10)) == list(range(30, 40))
    assert codes(VideoFile(clips["vfr"], start=2.0, max_frames=5)) == [40, 41, 42, 43, 44]
    # frames in memory re-timed the same way: 30 fps -> 20 fps keeps real time
    array = FrameArray(np.stack([code_frame(i) for i in range(30)]), fps=30.0)
    slower = retime(array, 20.0)
    assert slower.frame_count == 20 and codes(slower) == [int(np.floor((k + 0.5) * 1.5)) for k in range(20)]
    assert retime(array, 30.0) is array and retime(array, 0) is array


def test_select_frames_fills_a_short_stream_with_its_last_frame():
    frames = np.arange(4, dtype=np.uint8)[:, None, None, None].repeat(2, 1)
    out = np.concatenate(list(select_frames(iter([frames[:2], frames[2:]]), np.array([0, 0, 2, 3, 5, 6]), 4)))
    assert out[:, 0, 0, 0].tolist() == [0, 0, 2, 3, 3, 3]


def test_gif_and_av1_counts_through_the_reader(clips):
    gif = VideoFile(clips["gif"])
    got = codes(gif)
    assert len(got) == gif.frame_count == 25
    assert got == sorted(got) and got[0] == 0 and got[-1] >= 23  # in order, real time, to the end
    times = frame_times([(10, 10.0), (10, 5.0), (5, 20.0)])
    for k, code in enumerate(got):
        middle = (k + 0.5) / gif.fps
        assert times[code] <= middle + 0.011 and (code + 1 == len(times) or middle < times[code + 1] + 0.011)


def test_phone_clip_is_upright_with_its_audio(clips):
    meta = read_video_meta(clips["phone_hevc"])
    assert (meta.width, meta.height) == (96, 160)  # stored 160x96 with a 90 degree display matrix
    assert meta.codec == "hevc" and meta.audio_codec == "aac"
    clip = VideoFile(clips["phone_hevc"])
    frames = np.concatenate(list(clip.chunks(8)))
    assert frames.shape == (45, 160, 96, 3)
    # shown turned 90 degrees counter-clockwise: turning it back clockwise gives the coded picture
    assert [read_code(np.rot90(f, -1)) for f in frames] == list(range(45))
    assert np.abs(np.rot90(frames[7], -1).astype(int) - code_frame(7).astype(int)).mean() < 6
    assert clip.audio is not None and clip.audio.start == 0.0


@pytest.mark.parametrize("audio_seconds", [2.98, 3.5])
def test_every_frame_reaches_the_file_whatever_the_audio_length(tmp_path, audio_seconds):
    """An AAC track a few ms shorter than the video used to cut the video (-shortest); a longer one
    is cut at the video's end."""
    clip = make_clip(tmp_path / f"with_audio_{audio_seconds}.mp4", [(90, 30.0)], audio_seconds=audio_seconds)
    source = VideoFile(clip)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, source.fps, (source.width, source.height), audio_source=clip,
                     audio_start=source.audio.start) as writer:
        for chunk in source.chunks(16):
            writer.write(chunk)
    assert writer.frames_written == 90
    back = [read_code(f) for chunk in iter_video_frames(out) for f in chunk]
    assert back == list(range(90))
    info = probe(out)
    assert info["audio"] is not None
    assert info["duration"] == pytest.approx(3.0, abs=1 / 30)


def test_webm_result_gets_an_audio_track_it_can_hold(tmp_path):
    """WebM takes no AAC: the driving clip's AAC is encoded to Opus, and every frame is kept."""
    clip = make_clip(tmp_path / "talk.mp4", [(24, 24.0)], audio_seconds=0.98)
    source = VideoFile(clip)
    out = tmp_path / "out.webm"
    with VideoWriter(out, source.fps, (source.width, source.height), audio_source=clip, codec="av1",
                     crf=40) as writer:
        for chunk in source.chunks(8):
            writer.write(chunk)
    assert writer.audio_mode == "opus"
    assert probe(out)["audio"] == {"codec": "opus"}
    assert [read_code(f) for chunk in iter_video_frames(out) for f in chunk] == list(range(24))


def test_raw_stream_without_timestamps_is_counted_exactly(tmp_path):
    """A raw .h264 stream has no timestamps: its frames are counted from the packets and spaced at the
    rate ffmpeg assumes (25 fps), and a window is cut from the decoded frames (nothing to seek by)."""
    clip = make_clip(tmp_path / "clip.mp4", [(40, 30.0)])
    raw = tmp_path / "clip.h264"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-c", "copy", "-bsf:v", "h264_mp4toannexb",
                    str(raw)], check=True)
    meta = read_video_meta(raw)
    assert not meta.timeline.timed and meta.frame_count == 40 and meta.fps == 25.0
    assert codes(VideoFile(raw)) == list(range(40))
    assert codes(VideoFile(raw, start=1.0, max_frames=5)) == [25, 26, 27, 28, 29]
