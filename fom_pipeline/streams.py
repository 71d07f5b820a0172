"""Clips as streams: frames read a chunk at a time, any number of times, never all at once.

A :class:`FrameSource` is what flows between the steps of the pipeline (a driving video, its fixed
face window, the pasted result): it knows its size, frame rate, frame count and audio track
without decoding anything, and ``chunks()`` yields its frames in small batches. Sources that
compute their frames (crops, animations, pastes) do so only when a consumer iterates them.

Chunks are uint8 [b,H,W,3] or float32 [b,H,W,3] in [0, 1]; :func:`as_float` and :func:`as_uint8`
convert either way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .arrays import as_numpy
from .errors import InputError
from .images import check_layout
from .resize import resize_batch

log = logging.getLogger(__name__)
READ_BUDGET_BYTES = 96 << 20  # raw decoded frames held at once while reading a file


@dataclass(frozen=True)
class AudioTrack:
    """The audio of ``path`` from ``start`` seconds: muxed beside the frames when a clip is written."""

    path: str
    start: float = 0.0


class FrameSource:
    """A clip that can be read more than once, a chunk at a time (see the module docstring)."""

    fps: float = 25.0
    width: int = 0
    height: int = 0
    frame_count: int = 0  # exact where the source knows it, else estimated from duration x fps
    audio: AudioTrack | None = None

    def chunks(self, size: int = 16) -> Iterator[np.ndarray]:
        """Yield the frames in order, about ``size`` at a time (a hint: lengths may differ)."""
        raise NotImplementedError

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def as_float(chunk: np.ndarray) -> np.ndarray:
    """Frames as float32 in [0, 1] (uint8 divided by 255; float passed through)."""
    if chunk.dtype == np.uint8:
        return chunk.astype(np.float32) * np.float32(1.0 / 255.0)
    return np.asarray(chunk, dtype=np.float32)


def as_uint8(chunk: np.ndarray) -> np.ndarray:
    """Frames as rounded uint8 (float in [0, 1] scaled; done in place on float32 input)."""
    if chunk.dtype == np.uint8:
        return chunk
    frames = np.asarray(chunk, dtype=np.float32)
    np.multiply(frames, 255.0, out=frames)
    np.add(frames, 0.5, out=frames)
    np.clip(frames, 0.0, 255.0, out=frames)
    return frames.astype(np.uint8)


def fit_frames(chunk: np.ndarray, size: int) -> np.ndarray:
    """Frames resized to size x size (area filter when shrinking) and made float32, in that order:
    a chunk of full-size float frames would be four times larger than the decoded bytes."""
    return as_float(resize_batch(chunk, size))


class VideoFile(FrameSource):
    """A video file decoded by ffmpeg, its frames taken at their real times for one frame rate.

    ``fps``: the rate to read at (default: the clip's own, as a player shows it). Frame k is the
    source frame on screen at ``start + (k + 1/2) / fps`` (:meth:`fom_pipeline.video.Timeline.pick`),
    so a variable-rate phone clip plays in real time at a constant rate, and ``frame_count`` is
    exactly what ``chunks`` yields. ``start``/``duration`` (seconds) and ``max_frames`` cut a window.
    """

    def __init__(self, path: str | os.PathLike, start: float = 0.0, max_frames: int | None = None,
                 audio: bool = True, meta=None, *, duration: float | None = None, fps: float | None = None):
        from .video import read_video_meta

        meta = meta or read_video_meta(path)  # ``meta``: a VideoMeta already read for ``path``
        if start and meta.duration and start >= meta.duration:
            raise InputError(f"start {start:g} s is past the end of the video ({meta.duration:g} s): {meta.path}")
        if duration is not None and duration <= 0:
            raise InputError(f"duration must be above 0 seconds, got {duration:g}: {meta.path}")
        self.meta = meta
        self.path = meta.path
        self.start = float(start or 0.0)
        self.duration_limit = float(duration) if duration else None
        self.max_frames = int(max_frames) if max_frames else None
        self.fps = float(fps) if fps and fps > 0 else (meta.fps or 25.0)
        self.width, self.height = meta.width, meta.height
        timeline = meta.timeline
        if timeline is not None:
            self.picks = timeline.pick(self.fps, self.start, self.duration_limit, self.max_frames)
            self.frame_count = len(self.picks)
            first = float(timeline.times[0]) + self.start
        else:  # ffmpeg could not list the frames: take them as they come, counted from duration x fps
            self.picks = None
            left = max(0, meta.frame_count - int(round(self.start * self.fps)))
            limits = [v for v in (self.max_frames, self.duration_limit and round(self.duration_limit * self.fps)) if v]
            self.limit = min(limits) if limits else None
            self.frame_count = min(left, self.limit) if self.limit else left
            first = self.start
        self.audio = AudioTrack(meta.path, first) if audio and meta.has_audio else None

    def at_rate(self, fps: float) -> VideoFile:
        """The same window of the same file read at another frame rate (from the real timestamps)."""
        return VideoFile(self.path, self.start, self.max_frames, self.audio is not None, self.meta,
                         duration=self.duration_limit, fps=fps)

    def chunks(self, size: int = 16) -> Iterator[np.ndarray]:
        from .video import iter_video_frames

        frame_bytes = max(1, self.width * self.height * 3)
        size = int(max(1, min(size, READ_BUDGET_BYTES // frame_bytes)))
        if self.picks is None:
            yield from iter_video_frames(self.path, chunk=size, start=self.start, max_frames=self.limit)
            return
        if not len(self.picks):
            return
        timeline = self.meta.timeline
        first, last = int(self.picks[0]), int(self.picks[-1])
        if not timeline.timed:  # no timestamps to seek by: decode from the first frame
            first = 0
        # Seek half way between the frame before the first one needed and that one: ffmpeg then
        # decodes from exactly that frame, whatever the rounding of its timestamp.
        seek = (timeline.times[first - 1] + timeline.times[first]) / 2 if first > 0 else 0.0
        decoded = iter_video_frames(self.path, chunk=size, start=seek, max_frames=last - first + 1)
        yield from select_frames(decoded, self.picks - first, size, what=self.path)


def select_frames(chunks: Iterator[np.ndarray], picks: np.ndarray, size: int = 16,
                  what: str = "the clip") -> Iterator[np.ndarray]:
    """Frame ``picks[k]`` of a stream of chunks as output frame k, in chunks of ``size`` (``picks``
    never decreases: frames are skipped or repeated, never reordered). If the stream ends early,
    its last frame fills the rest, with a warning, so the announced count still holds."""
    picks = np.asarray(picks)
    held: list[np.ndarray] = []
    slot, index, frame = 0, 0, None
    for chunk in chunks:
        n, end = len(chunk), slot + len(chunk)
        if not held and 0 < n <= size and (n == size or end == len(picks)) and end <= len(picks) and \
                np.array_equal(picks[slot : end + 1], np.arange(index, index + min(n + 1, len(picks) - slot))):
            yield chunk  # each frame picked once, as for a clip at its own rate: passed on, not copied
            slot, index, frame = end, index + n, chunk[-1]
            if slot == len(picks):
                break
            continue
        for frame in chunk:
            while slot < len(picks) and picks[slot] == index:
                held.append(frame)
                slot += 1
                if len(held) == size:
                    yield np.stack(held)
                    held = []
            index += 1
            if slot == len(picks):
                break
        if slot == len(picks):
            break
    if slot < len(picks) and frame is not None:
        log.warning("%s gave %d frames where %d were listed; repeating its last frame", what, index,
                    int(picks[-1]) + 1)
        held += [frame] * (len(picks) - slot)
    for start in range(0, len(held), size):
        yield np.stack(held[start : start + size])


def retime(source: FrameSource, fps: float | None) -> FrameSource:
    """``source`` played at ``fps`` frames a second, same length in seconds (frames repeated or
    skipped to keep real time); unchanged when ``fps`` is 0/None or already its rate. A video file is
    read again from its own timestamps."""
    if not fps or fps <= 0 or abs(float(fps) - source.fps) < 1e-9:
        return source
    if isinstance(source, VideoFile):
        return source.at_rate(fps)
    return Retimed(source, fps)


def rate_picks(count: int, fps: float, to_fps: float) -> np.ndarray:
    """Which of ``count`` frames at ``fps`` each frame at ``to_fps`` shows (as long in seconds): the
    frame on screen in the middle of its interval."""
    out = int(round(count * to_fps / fps))
    middles = (np.arange(out) + 0.5) * (fps / to_fps)
    return np.minimum(np.floor(middles).astype(np.int64), max(0, count - 1))


class Retimed(FrameSource):
    """Another (constant-rate) source at ``fps``: frame k is the source frame on screen in the middle
    of output frame k's interval, as :meth:`fom_pipeline.video.Timeline.pick` chooses for files."""

    def __init__(self, source: FrameSource, fps: float):
        self.source, self.fps = source, float(fps)
        self.width, self.height, self.audio = source.width, source.height, source.audio
        self.picks = rate_picks(source.frame_count, source.fps, self.fps)
        self.frame_count = len(self.picks)

    def chunks(self, size: int = 16) -> Iterator[np.ndarray]:
        yield from select_frames(self.source.chunks(size), self.picks, max(1, int(size)))


class FrameArray(FrameSource):
    """Frames already in memory (a ComfyUI IMAGE batch, a test clip): chunks are views, not copies."""

    def __init__(self, frames, fps: float = 25.0, audio: AudioTrack | None = None):
        frames = as_numpy(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if check_layout(frames.shape, "frames", batched=True):
            frames = np.repeat(frames.reshape(*frames.shape[:3], 1), 3, axis=-1)
        self.frames = frames if frames.dtype == np.uint8 else frames.astype(np.float32, copy=False)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.frame_count, self.height, self.width = (int(v) for v in self.frames.shape[:3])
        self.audio = audio

    def chunks(self, size: int = 16) -> Iterator[np.ndarray]:
        size = max(1, int(size))
        for start in range(0, self.frame_count, size):
            yield self.frames[start : start + size]


class Trimmed(FrameSource):
    """Frames ``first`` .. ``first + count`` of another source (its audio shifted to match)."""

    def __init__(self, source: FrameSource, first: int = 0, count: int | None = None):
        self.source = source
        self.first = max(0, int(first))
        left = max(0, source.frame_count - self.first)
        self.frame_count = left if count is None else min(left, max(0, int(count)))
        self.fps, self.width, self.height = source.fps, source.width, source.height
        audio = source.audio
        self.audio = AudioTrack(audio.path, audio.start + self.first / self.fps) if audio else None

    def chunks(self, size: int = 16) -> Iterator[np.ndarray]:
        skip, left = self.first, self.frame_count
        for chunk in self.source.chunks(size):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            part = chunk[skip : skip + left]
            skip = 0
            left -= len(part)
            if len(part):
                yield part
            if left <= 0:
                return


def clip_name(source) -> str:
    """The file name of the video behind a frame source (through crops and cuts), or ""."""
    for _ in range(16):
        path = getattr(source, "path", None)
        if isinstance(path, (str, os.PathLike)):
            return os.path.basename(os.fspath(path))
        source = getattr(source, "source", None)
        if source is None:
            break
    return ""


def regroup(chunks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The same frames in chunks of exactly ``size`` (the last may be shorter)."""
    held: list[np.ndarray] = []
    count = 0
    for chunk in chunks:
        while len(chunk):
            take = chunk[: size - count]
            held.append(take)
            count += len(take)
            chunk = chunk[len(take):]
            if count == size:
                yield held[0] if len(held) == 1 else np.concatenate(held)
                held, count = [], 0
    if held:
        yield held[0] if len(held) == 1 else np.concatenate(held)
