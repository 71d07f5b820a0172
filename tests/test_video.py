"""Streaming video reader/writer: real media in, real files out, atomic results, audio kept."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from kit import PHOTO

from fom_pipeline.errors import InputError
from fom_pipeline.video import (
    VideoWriter,
    ffmpeg_exe,
    iter_video_frames,
    probe,
    read_video_meta,
)


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def driving(media_dir):
    return media_dir / "fom_dv.mp4"


@pytest.fixture(scope="module")
def driver_with_audio(driving, tmp_path_factory):
    """Three seconds of fom_dv.mp4 with a 440 Hz tone as its audio track (AAC)."""
    out = tmp_path_factory.mktemp("media") / "dv_audio.mp4"
    _ffmpeg("-i", str(driving), "-f", "lavfi", "-i", "sine=frequency=440:duration=5", "-t", "3",
            "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-crf", "20", "-c:a", "aac", str(out))
    return out


def test_meta_of_real_video(driving):
    meta = read_video_meta(driving)
    assert (meta.width, meta.height) == (256, 256)
    assert meta.fps == pytest.approx(30.0)
    assert meta.frame_count == 1759
    assert meta.codec == "h264"
    assert not meta.has_audio


def test_frames_stream_in_chunks_with_start_and_limit(driving):
    chunks = list(iter_video_frames(driving, chunk=4, max_frames=10))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert all(c.dtype == np.uint8 and c.shape[1:] == (256, 256, 3) for c in chunks)
    first = np.concatenate(chunks)
    # Starting 5 frames (1/6 s) later gives the same pictures shifted by 5 frames.
    later = np.concatenate(list(iter_video_frames(driving, chunk=3, start=5 / 30, max_frames=5)))
    assert np.abs(later.astype(int) - first[5:10].astype(int)).mean() < 1.0
    # The tail: fewer frames than asked for, no error.
    tail = list(iter_video_frames(driving, chunk=8, start=58.5, max_frames=50))
    assert 1 <= sum(len(c) for c in tail) <= 5


def test_reader_errors(tmp_path, driving):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    audio_only = tmp_path / "tone.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(audio_only))
    cases = {
        tmp_path / "missing.mp4": "driving video not found",
        tmp_path: "is a folder",
        text: "not a video file",
        audio_only: "no frames",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=message):
            read_video_meta(path)
        with pytest.raises(InputError, match=message):
            list(iter_video_frames(path))
    with pytest.raises(InputError, match="no frames after 100 s"):
        list(iter_video_frames(driving, start=100.0))


def _noise_frames(n: int, h: int, w: int) -> np.ndarray:
    """Natural picture content (the seed's face photo), shifted a little each frame."""
    import cv2

    image = cv2.imread(str(PHOTO))[:, :, ::-1]
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return np.stack([np.roll(image, i, axis=1) for i in range(n)])


def test_writer_roundtrip_size_fps_count(tmp_path):
    frames = _noise_frames(15, 90, 120)
    out = tmp_path / "out" / "clip.mp4"
    with VideoWriter(out, 25.0, (120, 90)) as writer:
        for i in range(0, 15, 4):
            writer.write(frames[i : i + 4])
    assert out.is_file() and writer.frames_written == 15
    assert os.listdir(out.parent) == ["clip.mp4"]  # no temporary files left
    info = probe(out)
    assert info["video"]["size"] == (120, 90) and info["video"]["fps"] == pytest.approx(25.0)
    assert info["audio"] is None
    back = np.concatenate(list(iter_video_frames(out)))
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 4.0
    mode = os.stat(out).st_mode & 0o777
    assert mode & 0o044, f"result should be readable by others like any new file, got {oct(mode)}"


def test_writer_odd_size_is_padded_by_one_edge_pixel(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 30.0, (61, 45)) as writer:
        writer.write(_noise_frames(3, 45, 61))
    assert probe(out)["video"]["size"] == (62, 46)


def test_writer_copies_audio_slice(tmp_path, driver_with_audio):
    meta = read_video_meta(driver_with_audio)
    assert meta.has_audio and meta.audio_codec == "aac"
    frames = np.concatenate(list(iter_video_frames(driver_with_audio, start=1.0, max_frames=30)))
    out = tmp_path / "with_audio.mp4"
    with VideoWriter(out, meta.fps, (256, 256), audio_source=driver_with_audio, audio_start=1.0) as writer:
        writer.write(frames)
    assert writer.audio_mode == "copy"
    info = probe(out)
    assert info["audio"] == {"codec": "aac"}
    assert info["duration"] == pytest.approx(1.0, abs=0.1)


def test_writer_falls_back_to_aac(tmp_path, driving):
    wav_driver = tmp_path / "mulaw.mov"  # mu-law audio, which the mp4 container cannot take as is
    _ffmpeg("-i", str(driving), "-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-t", "1",
            "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "pcm_mulaw", str(wav_driver))
    out = tmp_path / "fallback.mp4"
    with VideoWriter(out, 30.0, (256, 256), audio_source=wav_driver) as writer:
        writer.write(np.concatenate(list(iter_video_frames(wav_driver, max_frames=10))))
    assert writer.audio_mode == "aac"
    assert probe(out)["audio"]["codec"] == "aac"


def test_failed_write_leaves_nothing_and_keeps_existing_file(tmp_path):
    out = tmp_path / "result.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, 30.0, (64, 64), overwrite=True) as writer:
            writer.write(_noise_frames(5, 64, 64))
            raise KeyboardInterrupt
    assert out.read_bytes() == b"previous result"
    assert os.listdir(tmp_path) == ["result.mp4"]


def test_no_overwrite_unless_asked(tmp_path):
    out = tmp_path / "result.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(InputError, match=r"already exists.*\(pass overwrite=True to replace it\)") as info:
        with VideoWriter(out, 30.0, (64, 64)) as writer:
            writer.write(_noise_frames(2, 64, 64))
    assert info.value.worded("cli").endswith("(pass --overwrite to replace it)")  # each front end's words
    assert out.read_bytes() == b"previous result"
    assert os.listdir(tmp_path) == ["result.mp4"]
    with VideoWriter(out, 30.0, (64, 64), overwrite=True) as writer:
        writer.write(_noise_frames(2, 64, 64))
    assert probe(out)["video"]["size"] == (64, 64)
