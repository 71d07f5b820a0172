"""VIDEO in and out: ComfyUI videos as the engine's frame sources, and a VIDEO that renders lazily.

``frame_source`` turns what a node receives (a core ``LoadVideo`` VIDEO with its trim window, our
own lazy VIDEO, any other ``VideoInput``, or an IMAGE batch) into a
:class:`fom_pipeline.streams.FrameSource` that is decoded a chunk at a time. ``StreamedVideo`` is
the VIDEO our nodes return: nothing is computed until a consumer asks. ``save_to`` (core Save
Video) renders the frames batch by batch into a cached temporary file (progress bar, Cancel
honoured), encoded with Save Video's options (container, codec, crf, bit depth, colour space,
preset) as core encodes the videos it makes from images, and copies that into place with the
workflow metadata; a second consumer asking for the same encoding reuses the file instead of
running the networks again. Trims, crops and resizes of our VIDEO stay lazy.
"""

from __future__ import annotations

import inspect
import io as bytes_io
import logging
import math
import os
import threading
import uuid
import wave
import weakref
from dataclasses import dataclass
from fractions import Fraction

import folder_paths
import torch
from comfy_api.input import VideoInput
from comfy_api.input_impl import VideoFromFile

from fom_pipeline.arrays import as_numpy, as_tensor
from fom_pipeline.codecs import (
    COLOR_SPACES,
    CONTAINERS,
    DEFAULT_CODEC,
    DEFAULT_CONTAINER,
    DEFAULT_CRF,
    DEFAULT_PRESET,
    VIDEO_ENCODERS,
    container_of,
    default_codec,
)
from fom_pipeline.errors import FOMError
from fom_pipeline.streams import AudioTrack, FrameArray, FrameSource, Trimmed, VideoFile, as_float
from fom_pipeline.video import read_video_meta

from .common import FOMNodeError, engine_errors, progress_callback

log = logging.getLogger("fom_multiface")
TIME_EPSILON = 1e-6  # seconds: a frame whose timestamp is this close to a trim's edge counts as on it


def _temp_file(suffix: str) -> str:
    folder = os.path.join(folder_paths.get_temp_directory(), "fom")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"fom_{uuid.uuid4().hex}{suffix}")


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _spill(data: bytes_io.BytesIO) -> str:
    """An in-memory video written to a temporary file, so ffmpeg can stream it like any file."""
    path = _temp_file(".mp4")
    data.seek(0)
    with open(path, "wb") as out:
        while block := data.read(1 << 20):
            out.write(block)
    data.seek(0)
    return path


def _owning(source: FrameSource, path: str) -> FrameSource:
    """``source``, which reads the temporary file ``path``: the file goes when the source does."""
    weakref.finalize(source, _remove, path)
    return source


def wav_track(audio: dict, owner) -> AudioTrack | None:
    """ComfyUI AUDIO (waveform [1,C,S], sample_rate) as a temporary 16-bit WAV the encoder can mux."""
    if not audio or "waveform" not in audio:
        return None
    wave_data = as_numpy(audio["waveform"][0].float().clamp(-1, 1))  # [C, S]
    path = _temp_file(".wav")
    with wave.open(path, "wb") as out:
        out.setnchannels(int(wave_data.shape[0]))
        out.setsampwidth(2)
        out.setframerate(int(audio.get("sample_rate") or 44100))
        out.writeframes((wave_data.T * 32767.0).astype("<i2").tobytes())
    weakref.finalize(owner, _remove, path)
    return AudioTrack(path)


def _accepted(method, **options) -> dict:
    """The keyword ``options`` that ``method`` (a ComfyUI API of some version) takes."""
    params = inspect.signature(method).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params}


# -- time windows ---------------------------------------------------------------------------------
def _frames_before(seconds: float, fps: float) -> int:
    """How many frames of a constant-rate clip start before ``seconds`` (core trims keep a frame
    whose timestamp is at or after the window's start and before its end)."""
    return max(0, math.ceil(seconds * fps - TIME_EPSILON))


def frame_window(frame_count: int, fps: float, start: float, duration: float) -> tuple[int, int]:
    """(first frame, frame count) of the window ``start`` .. ``start + duration`` seconds (duration 0:
    to the end; a negative start counts from the end, as ComfyUI's trims do)."""
    if start < 0:
        start = max(frame_count / fps + start, 0.0)
    first = min(_frames_before(start, fps), frame_count)
    end = frame_count if duration <= 0 else min(_frames_before(start + duration, fps), frame_count)
    return first, max(0, end - first)


def _file_window(path: str, start: float, duration: float, meta=None) -> FrameSource:
    """Frames of ``path`` in a trim window: ffmpeg seeks near the start (a frame early, so rounding
    can never lose the first one), then exactly the window's frames are kept. ``meta``: the file's
    :func:`~fom_pipeline.video.read_video_meta`, when already read."""
    clip = VideoFile(path, meta=meta)
    first, count = frame_window(clip.frame_count, clip.fps, start, duration)
    if first == 0 and count == clip.frame_count:
        return clip
    if first > 1:
        seeked = VideoFile(path, start=(first - 1) / clip.fps, meta=clip.meta)
        return Trimmed(seeked, first - (clip.frame_count - seeked.frame_count), count)
    return Trimmed(clip, first, count)


def _has_spatial_edit(video: VideoFromFile, source) -> bool:
    """Whether ``video`` holds a crop (or other frame edit) its file does not: newer ComfyUI keeps
    crops on VideoFromFile and reports the cropped size; its file still has the full frames."""
    pending = getattr(video, "has_pending_frame_edits", None)
    if callable(pending) and pending():
        return True
    return tuple(video.get_dimensions()) != tuple(VideoFromFile(source).get_dimensions())


def _edited_file(video: VideoFromFile) -> str:
    """ComfyUI writes the video with its edits applied (frame by frame, lossless), for streaming."""
    path = _temp_file(".mp4")
    video.save_to(path, **_accepted(video.save_to, crf=0))
    return path


def frame_source(value, what: str, fps: float | None = None) -> FrameSource:
    """A streaming FrameSource for a VIDEO or IMAGE input (``fps`` is used for IMAGE batches)."""
    if isinstance(value, StreamedVideo):
        return value.source
    if isinstance(value, torch.Tensor):
        with engine_errors(what):
            return FrameArray(value[..., :3], fps=fps or 25.0)  # IMAGE: the alpha, if any, is dropped here
    if isinstance(value, VideoFromFile):
        source = value.get_stream_source()
        with engine_errors(what):
            path = source if isinstance(source, str) else _spill(source)
            try:
                meta = read_video_meta(path)  # ffmpeg reads it, or our one line says why (before PyAV is asked)
            except FOMError:
                if path != source:
                    _remove(path)
                raise
            if _has_spatial_edit(value, source):
                if path != source:
                    _remove(path)
                path = _edited_file(value)
                return _owning(VideoFile(path), path)
            window = getattr(value, "get_active_trim_window", None)  # ComfyUI 0.33+: trims (Video Slice)
            start, duration = window() if window else (0.0, 0.0)
            clip = _file_window(path, float(start), float(duration), meta)
            return clip if path == source else _owning(clip, path)
    if isinstance(value, VideoInput):  # already in memory (e.g. Create Video): use its tensors
        parts = value.get_components()
        holder = FrameArray(parts.images, fps=float(parts.frame_rate or 25))
        holder.audio = wav_track(parts.audio, holder)
        return holder
    raise FOMNodeError(f"{what}: expected a VIDEO or an IMAGE batch, got {type(value).__name__}")


# -- lazy spatial edits ---------------------------------------------------------------------------
class Cropped(FrameSource):
    """A rectangle ``x, y, width, height`` of another source's frames, cut a chunk at a time."""

    def __init__(self, source: FrameSource, x: int, y: int, width: int, height: int):
        self.source, self.rect = source, (int(x), int(y), int(width), int(height))
        self.fps, self.frame_count, self.audio = source.fps, source.frame_count, source.audio
        self.width, self.height = self.rect[2], self.rect[3]

    def chunks(self, size: int = 16):
        x, y, w, h = self.rect
        for chunk in self.source.chunks(size):
            yield chunk[:, y : y + h, x : x + w]


class Resized(FrameSource):
    """Another source's frames scaled with ComfyUI's own ``common_upscale`` (what Resize Image does),
    then optionally cut to ``post_crop`` (x, y, width, height), a chunk at a time."""

    def __init__(self, source: FrameSource, width: int, height: int, method: str, crop: str = "disabled",
                 post_crop: tuple[int, int, int, int] | None = None):
        self.source, self.scale = source, (int(width), int(height), method, crop)
        self.post_crop = tuple(int(v) for v in post_crop) if post_crop is not None else None
        self.fps, self.frame_count, self.audio = source.fps, source.frame_count, source.audio
        self.width, self.height = self.post_crop[2:] if self.post_crop else (int(width), int(height))

    def chunks(self, size: int = 16):
        import comfy.utils

        width, height, method, crop = self.scale
        for chunk in self.source.chunks(size):
            frames = as_tensor(as_float(chunk)).movedim(-1, 1)
            out = comfy.utils.common_upscale(frames, width, height, method, crop).movedim(1, -1)
            if self.post_crop is not None:
                x, y, w, h = self.post_crop
                out = out[:, y : y + h, x : x + w]
            yield as_numpy(out.clamp(0.0, 1.0))


def crop_rect(x: int, y: int, width: int, height: int, frame_w: int, frame_h: int):
    """ComfyUI's rule for a crop: clamped to the frame, even-aligned for the encoder; None when the
    rectangle is empty or the whole frame (the video is then returned unchanged)."""
    if int(width) <= 0 or int(height) <= 0:
        return None
    x = max(0, min(int(x), frame_w - 1))
    y = max(0, min(int(y), frame_h - 1))
    x, y = x - x % 2, y - y % 2
    width, height = min(int(width), frame_w - x), min(int(height), frame_h - y)
    if (x, y, width, height) == (0, 0, frame_w, frame_h):
        return None
    width, height = width - width % 2, height - height % 2
    return (x, y, width, height) if width > 0 and height > 0 else None


# -- encoding (the tables: fom_pipeline.codecs) -----------------------------------------------------
_CONTAINER_TITLES = {"webm": "WebM"}
@dataclass(frozen=True)
class Encoding:
    """How a render is encoded: Save Video's container, codec and re-encode options. The default
    is the pack's own (h264, crf 18, untagged), used when Save Video asks for nothing else."""

    container: str = DEFAULT_CONTAINER
    codec: str = DEFAULT_CODEC
    crf: float | None = DEFAULT_CRF
    bit_depth: int = 8
    color_space: str | None = None
    preset: str | None = DEFAULT_PRESET

    def writer_options(self) -> dict:
        return {"codec": self.codec, "crf": self.crf, "bit_depth": self.bit_depth,
                "color_space": self.color_space, "preset": self.preset}


DEFAULT_ENCODING = Encoding()


def _option(value) -> str:
    """A ComfyUI enum member (VideoContainer.MP4, a str subclass) or plain string as its value."""
    return str(getattr(value, "value", value) or "auto").lower()


def requested_encoding(path, format="auto", codec="auto", bit_depth=None, crf=None, color_space=None,
                       preset=None) -> Encoding:
    """Save Video's choices as an Encoding, resolved as ComfyUI resolves them for its own videos: the
    container from ``format`` or the file's extension, av1 for WebM and h264 otherwise; re-encode
    options (crf, bit depth, colour space, preset) with the encoder's default crf for the rest and
    sRGB when no colour space is named, as core tags the videos it makes from images."""
    container = _option(format)
    if container == "auto":
        named = container_of(path) if isinstance(path, (str, os.PathLike)) else None
        container = named if named in ("mkv", "webm") else DEFAULT_CONTAINER  # .mov/.m4v: core's mp4
    name = _option(codec)
    if name == "auto":
        name = default_codec(container)
    if container not in CONTAINERS or name not in VIDEO_ENCODERS:
        raise FOMNodeError(f"Save Video: cannot write {container} with {name}; pick {', '.join(CONTAINERS)} with "
                           f"{' or '.join(VIDEO_ENCODERS)}")
    if name not in CONTAINERS[container].codecs:
        raise FOMNodeError(f"Save Video: {_CONTAINER_TITLES.get(container, container)} needs the "
                           f"{' or '.join(CONTAINERS[container].codecs)} codec; pick "
                           f"{' or '.join(CONTAINERS[container].codecs)}, or "
                           f"{'/'.join(c for c in CONTAINERS if name in CONTAINERS[c].codecs)} for {name}")
    if color_space is not None and color_space not in COLOR_SPACES:
        raise FOMNodeError(f"Save Video: unsupported colour space {color_space!r}; pick auto, {', '.join(COLOR_SPACES)}")
    options = (crf, bit_depth, color_space, preset)
    if all(v is None for v in options) and (container, name) == (DEFAULT_CONTAINER, DEFAULT_CODEC):
        return DEFAULT_ENCODING
    if all(v is None for v in options):  # another container or codec: our quality, untagged
        return Encoding(container, name, crf=DEFAULT_ENCODING.crf if name == DEFAULT_CODEC else None,
                        preset=DEFAULT_ENCODING.preset if name == DEFAULT_CODEC else None)
    return Encoding(container, name, crf=crf, bit_depth=int(bit_depth or 8), color_space=color_space or "sRGB",
                    preset=preset)


class StreamedVideo(VideoInput):
    """A VIDEO whose frames come from a FrameSource when a consumer asks (see the module doc)."""

    def __init__(self, source: FrameSource, label: str):
        self.source = source
        self.label = label
        self._files: dict[Encoding, str] = {}
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
        return CONTAINERS[DEFAULT_CONTAINER].format_names

    # rendering
    def render(self, encoding: Encoding = DEFAULT_ENCODING) -> str:
        """The frames encoded once per encoding into a temporary file (with audio); later calls reuse it."""
        from fom_pipeline.pipeline import write_video

        with self._lock:
            path = self._files.get(encoding)
            if path and os.path.isfile(path):
                return path
            path = _temp_file(f".{encoding.container}")
            log.info("FOM: rendering %s (%d frames, %dx%d, %s %s)", self.label, self.source.frame_count,
                     self.source.width, self.source.height, encoding.container, encoding.codec)
            with engine_errors(self.label):
                write_video(self.source, path, progress=progress_callback(max(1, self.source.frame_count)),
                            **encoding.writer_options())
            weakref.finalize(self, _remove, path)
            self._files[encoding] = path
            return path

    def get_stream_source(self) -> str:
        return self.render()

    def save_to(self, path, format="auto", codec="auto", metadata: dict | None = None, bit_depth=None, crf=None,
                color_space=None, preset=None, **_more):
        """Render with Save Video's container, codec and re-encode options (see requested_encoding),
        then let ComfyUI's file video copy the streams (already what was asked: "auto" keeps them)
        to ``path`` with the workflow metadata."""
        encoding = requested_encoding(path, format, codec, bit_depth=bit_depth, crf=crf, color_space=color_space,
                                      preset=preset)
        return VideoFromFile(self.render(encoding)).save_to(path, format="auto", codec="auto", metadata=metadata)

    def get_components(self):
        """Every frame as one IMAGE tensor plus the audio (the in-memory path for short clips), decoded
        from the render, so it matches what Save Video writes and reuses the render if there is one."""
        return VideoFromFile(self.render()).get_components()

    # lazy edits: ComfyUI's VideoInput API, without computing a frame
    def as_trimmed(self, start_time: float | None = None, duration: float | None = None,
                   strict_duration: bool = False) -> StreamedVideo | None:
        """The frames in ``start_time`` .. ``start_time + duration`` s (duration 0: to the end; a negative
        start counts from the end). None, so core's Video Slice reports it, when no frame is left or,
        with ``strict_duration``, when the clip is shorter than asked."""
        start, duration = float(start_time or 0.0), float(duration or 0.0)
        first, count = frame_window(self.source.frame_count, self.source.fps, start, duration)
        if count <= 0:
            return None
        if strict_duration and duration > 0 and count / self.source.fps < duration - TIME_EPSILON:
            return None
        return StreamedVideo(Trimmed(self.source, first, count), self.label)

    def as_cropped(self, x: int = 0, y: int = 0, width: int = 0, height: int = 0) -> StreamedVideo:
        """A pixel rectangle of every frame, with ComfyUI's rule (clamped, even-aligned; an empty or
        full-frame rectangle returns this video)."""
        rect = crop_rect(x, y, width, height, self.source.width, self.source.height)
        return self if rect is None else StreamedVideo(Cropped(self.source, *rect), self.label)

    def as_resized(self, width: int, height: int, upscale_method: str, crop: str = "disabled",
                   post_crop: tuple[int, int, int, int] | None = None) -> StreamedVideo:
        """Every frame scaled as ComfyUI's Resize Image scales an IMAGE (0 for one side keeps the
        aspect), then cut to ``post_crop``; frame count, rate and audio unchanged."""
        width, height = int(width), int(height)
        if width <= 0 and height <= 0:
            width, height = self.source.width, self.source.height
        elif width <= 0:
            width = max(1, round(self.source.width * height / self.source.height))
        elif height <= 0:
            height = max(1, round(self.source.height * width / self.source.width))
        return StreamedVideo(Resized(self.source, width, height, upscale_method, crop, post_crop), self.label)
