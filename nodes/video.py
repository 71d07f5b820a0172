"""VIDEO in and out: ComfyUI videos as the engine's frame sources, and a VIDEO that renders lazily.

``frame_source`` turns what a node receives (a core ``LoadVideo`` VIDEO, our own lazy VIDEO, any
other ``VideoInput``, or an IMAGE batch) into a :class:`fom_pipeline.streams.FrameSource` that is
decoded a chunk at a time. ``StreamedVideo`` is the VIDEO our nodes return: nothing is computed
until a consumer asks. ``save_to`` (core Save Video) renders the frames batch by batch into one
cached temporary file (progress bar, Cancel honoured) and copies that into place; a second
consumer reuses the file instead of running the networks again.
"""

from __future__ import annotations

import io as bytes_io
import logging
import os
import threading
import uuid
import wave
import weakref
from fractions import Fraction

import folder_paths
import torch
from comfy_api.input import VideoInput
from comfy_api.input_impl import VideoFromFile

from fom_pipeline.streams import AudioTrack, FrameArray, FrameSource, Trimmed, VideoFile

from .common import FOMNodeError, engine_errors, progress_callback

log = logging.getLogger("fom_multiface")
MP4_FORMAT_NAME = "mov,mp4,m4a,3gp,3g2,mj2"  # what PyAV calls an .mp4 container


def _temp_file(suffix: str) -> str:
    folder = os.path.join(folder_paths.get_temp_directory(), "fom")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"fom_{uuid.uuid4().hex}{suffix}")


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _spill(data: bytes_io.BytesIO, owner) -> str:
    """An in-memory video written once to a temporary file (removed with ``owner``), so ffmpeg can
    stream it like any file."""
    path = _temp_file(".mp4")
    data.seek(0)
    with open(path, "wb") as out:
        while block := data.read(1 << 20):
            out.write(block)
    data.seek(0)
    weakref.finalize(owner, _remove, path)
    return path


def _wav_track(audio: dict, owner) -> AudioTrack | None:
    """ComfyUI AUDIO (waveform [1,C,S], sample_rate) as a temporary 16-bit WAV the encoder can mux."""
    if not audio or "waveform" not in audio:
        return None
    wave_data = audio["waveform"][0].detach().cpu().float().clamp(-1, 1).numpy()  # [C, S]
    path = _temp_file(".wav")
    with wave.open(path, "wb") as out:
        out.setnchannels(int(wave_data.shape[0]))
        out.setsampwidth(2)
        out.setframerate(int(audio.get("sample_rate") or 44100))
        out.writeframes((wave_data.T * 32767.0).astype("<i2").tobytes())
    weakref.finalize(owner, _remove, path)
    return AudioTrack(path)


def frame_source(value, what: str, fps: float | None = None) -> FrameSource:
    """A streaming FrameSource for a VIDEO or IMAGE input (``fps`` is used for IMAGE batches)."""
    if isinstance(value, StreamedVideo):
        return value.source
    if isinstance(value, torch.Tensor):
        with engine_errors(what):
            return FrameArray(value, fps=fps or 25.0)
    if isinstance(value, VideoFromFile):
        source = value.get_stream_source()
        start = float(getattr(value, "_VideoFromFile__start_time", 0.0) or 0.0)  # newer ComfyUI trims
        length = float(getattr(value, "_VideoFromFile__duration", 0.0) or 0.0)
        path = source if isinstance(source, str) else _spill(source, value)
        with engine_errors(what):
            clip = VideoFile(path, start=start)
            return Trimmed(clip, 0, int(round(length * clip.fps))) if length > 0 else clip
    if isinstance(value, VideoInput):  # already in memory (e.g. Create Video): use its tensors
        parts = value.get_components()
        holder = FrameArray(parts.images, fps=float(parts.frame_rate or 25))
        holder.audio = _wav_track(parts.audio, holder)
        return holder
    raise FOMNodeError(f"{what}: expected a VIDEO or an IMAGE batch, got {type(value).__name__}")


class StreamedVideo(VideoInput):
    """A VIDEO whose frames come from a FrameSource when a consumer asks (see the module doc)."""

    def __init__(self, source: FrameSource, label: str):
        self.source = source
        self.label = label
        self._file: str | None = None
        self._lock = threading.Lock()

    # cheap facts: no frame is computed for these
    def get_dimensions(self) -> tuple[int, int]:
        return self.source.width, self.source.height

    def get_frame_rate(self) -> Fraction:
        return Fraction(self.source.fps).limit_denominator(1001)

    def get_frame_count(self) -> int:
        return int(self.source.frame_count)

    def get_duration(self) -> float:
        return float(self.source.frame_count / self.source.fps)

    def get_container_format(self) -> str:
        return MP4_FORMAT_NAME

    # rendering
    def render(self) -> str:
        """The frames encoded once into a temporary .mp4 (with audio); later calls reuse it."""
        from fom_pipeline.pipeline import write_video

        with self._lock:
            if self._file and os.path.isfile(self._file):
                return self._file
            path = _temp_file(".mp4")
            log.info("FOM: rendering %s (%d frames, %dx%d)", self.label, self.source.frame_count,
                     self.source.width, self.source.height)
            with engine_errors(self.label):
                write_video(self.source, path, progress=progress_callback(max(1, self.source.frame_count)))
            weakref.finalize(self, _remove, path)
            self._file = path
            return path

    def get_stream_source(self) -> str:
        return self.render()

    def save_to(self, path, format="auto", codec="auto", metadata: dict | None = None, **_more):
        """Render (or reuse the render), then let ComfyUI's file video copy it to ``path`` with the
        workflow metadata; extra keyword arguments of newer ComfyUI versions are accepted."""
        return VideoFromFile(self.render()).save_to(path, format=format, codec=codec, metadata=metadata)

    def get_components(self):
        """Every frame as one IMAGE tensor plus the audio (the in-memory path for short clips), decoded
        from the render, so it matches what Save Video writes and reuses the render if there is one."""
        return VideoFromFile(self.render()).get_components()

    def as_trimmed(self, start_time: float = 0.0, duration: float = 0.0, *_args, **_kwargs) -> StreamedVideo:
        first = int(round(float(start_time or 0.0) * self.source.fps))
        count = int(round(float(duration) * self.source.fps)) if duration and duration > 0 else None
        return StreamedVideo(Trimmed(self.source, first, count), self.label)

