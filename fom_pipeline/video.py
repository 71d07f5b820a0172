"""Streaming video in and out through imageio-ffmpeg's ffmpeg binary.

Frames are read and written in chunks so memory stays bounded whatever the video's length. The writer
encodes into a hidden partial file beside the final one, muxes the driving video's audio track (copied
without re-encoding where the container allows it, else AAC) and only then moves the result into place
(:mod:`fom_pipeline.atomic`), so an interrupted or failed run never leaves a broken file or replaces an
existing result.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import atomic
from .codecs import (
    COLOR_SPACES,
    CONTAINERS,
    DEFAULT_CODEC,
    DEFAULT_CONTAINER,
    DEFAULT_CRF,
    DEFAULT_PRESET,
    VIDEO_ENCODERS,
    container_of,
)
from .errors import FOMError, InputError
from .inputs import check_input_file

log = logging.getLogger(__name__)

__all__ = [
    "VideoMeta",
    "VideoWriter",
    "VideoError",
    "ffmpeg_exe",
    "Timeline",
    "read_video_meta",
    "read_timeline",
    "iter_video_frames",
    "check_output_path",
    "mux_audio",
]


class VideoError(FOMError):
    """ffmpeg failed while encoding or muxing (not the user's input)."""


def ffmpeg_exe() -> str:
    """The ffmpeg binary that imageio-ffmpeg ships (or the one IMAGEIO_FFMPEG_EXE names)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


NO_PTS = -(1 << 63)  # how ffmpeg prints a missing timestamp
RATE_SNAP = 0.002  # an average rate this close (relative) to a whole or NTSC rate is that rate


def _snap_rate(rate: float) -> float:
    """A measured average rate as the nominal rate it rounds (29.9701 -> 30000/1001, 24.012 -> 24):
    timestamps stored in milliseconds or with a rounded last frame move the average a little."""
    for nominal in (round(rate), round(rate * 1.001) / 1.001):
        if nominal > 0 and abs(rate - nominal) <= RATE_SNAP * nominal:
            return float(nominal)
    return float(rate)


@dataclass(frozen=True)
class Timeline:
    """When each frame of a video is on screen: ``times`` (seconds, presentation order, counted as
    ffmpeg's ``-ss`` counts them) and ``end``, when the last frame leaves the screen.

    Read from the container's packets without decoding (:func:`read_timeline`); the frames the
    decoder then gives are exactly these, in this order (packets marked to discard by an edit list
    are left out), so counts announced from it are counts decoded.
    """

    times: np.ndarray
    end: float
    timed: bool = True  # False: the packets had no timestamps; times are spaced at the reported rate

    @property
    def count(self) -> int:
        return len(self.times)

    @property
    def span(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        return max(0.0, self.end - float(self.times[0]))

    def average_rate(self) -> float:
        """Frames per second as a player shows the clip: frames over time, snapped to a nominal rate."""
        return _snap_rate(self.count / self.span) if self.span > 0 else 0.0

    def slot_count(self, rate: float, start: float = 0.0, duration: float | None = None,
                   max_frames: int | None = None) -> int:
        """How many frames at ``rate`` cover the clip from ``start`` s (at most ``duration`` s, ``max_frames``)."""
        count = int(round((self.end - float(self.times[0]) - max(0.0, start)) * rate))
        if duration:
            count = min(count, max(1, int(round(duration * rate))))
        if max_frames:
            count = min(count, int(max_frames))
        return max(0, count)

    def pick(self, rate: float, start: float = 0.0, duration: float | None = None,
             max_frames: int | None = None) -> np.ndarray:
        """For output frame k at ``rate``, the index of the source frame on screen in the middle of its
        interval (start + (k + 1/2) / rate): real time, whatever the clip's own timing; a constant-rate
        clip at its own rate maps k to k. The rule of ffmpeg's fps filter (round to nearest)."""
        count = self.slot_count(rate, start, duration, max_frames)
        middles = float(self.times[0]) + max(0.0, start) + (np.arange(count) + 0.5) / rate
        picks = np.searchsorted(self.times, middles, side="right") - 1
        return np.clip(picks, 0, self.count - 1)


@dataclass(frozen=True)
class VideoMeta:
    """What the front ends need to know about a video before streaming it.

    ``fps`` is the rate a player shows (the timeline's average, else what ffmpeg reports),
    ``duration`` the video's own length, and ``timeline`` when each frame is shown (None where the
    packets carry no timestamps: the frames are then taken as they come, at ``fps``).
    """

    path: str
    width: int
    height: int
    fps: float
    duration: float
    codec: str
    audio_codec: str | None
    timeline: Timeline | None = field(default=None, compare=False, repr=False)

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def frame_count(self) -> int:
        """Frames read at ``fps`` from the start: exact with a timeline, else duration x fps."""
        if self.timeline is not None:
            return self.timeline.slot_count(self.fps)
        return max(0, int(round(self.duration * self.fps))) if self.fps > 0 else 0


def _last_ffmpeg_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip() and not ln.startswith("===")]
    return lines[-1] if lines else "unknown ffmpeg error"


def _open_reader(path: str, input_params: list[str], output_params: list[str]):
    """Start imageio-ffmpeg's frame generator and return (generator, meta dict)."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(path, input_params=input_params, output_params=output_params)
    try:
        meta = next(gen)
    except StopIteration:
        gen.close()
        raise InputError(f"video has no frames: {path}") from None
    except (OSError, RuntimeError, IndexError, ValueError) as err:
        gen.close()
        text = str(err)
        if "Stream #" in text and " Video: " not in text:
            raise InputError(f"video has no frames (it has no video stream): {path}") from None
        if "Invalid data found" in text:
            raise InputError(f"not a video file ffmpeg can read: {path}") from None
        raise InputError(f"cannot read video {path}: {_last_ffmpeg_line(text)}") from None
    return gen, meta


STILL_CODECS = {"png", "mjpeg", "bmp", "tiff", "webp", "jpeg2000", "jpegls", "pam", "ppm", "pgm", "qoi", "gif"}


def is_still_picture(meta: VideoMeta) -> bool:
    """Whether what ffmpeg opened is one picture (a PNG, a JPEG, ...) rather than a video."""
    codec = meta.codec.split()[0].strip(",").lower() if meta.codec.strip() else ""
    return codec in STILL_CODECS and meta.frame_count <= 1


def looks_like_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a video ffmpeg can read (for advice when a video is given as a picture)."""
    try:
        return not is_still_picture(read_video_meta(path))
    except FOMError:
        return False


def read_video_meta(path: str | os.PathLike, what: str = "driving video") -> VideoMeta:
    """Size, frame rate, duration, codecs and frame times of a video (see VideoMeta); raises
    InputError for a missing or non-video file (``what`` it is names it)."""
    path = check_input_file(path, what)
    gen, meta = _open_reader(path, [], [])
    gen.close()
    width, height = (int(v) for v in meta["size"])
    if width <= 0 or height <= 0:
        raise InputError(f"video has no frames (empty picture size): {path}")
    fps = float(meta.get("fps") or 0.0)
    timeline = read_timeline(path, fps)
    return VideoMeta(
        path=path,
        width=width,
        height=height,
        fps=timeline.average_rate() if timeline else fps,
        duration=timeline.span if timeline else float(meta.get("duration") or 0.0),
        codec=str(meta.get("codec", "")),
        audio_codec=meta.get("audio_codec"),
        timeline=timeline,
    )


def read_timeline(path: str | os.PathLike, fps: float = 0.0) -> Timeline | None:
    """When each frame of the first video stream is shown, from its packets (no decoding: ffmpeg
    copies them to a list of timestamps). ``fps`` (the reported rate, else 25) gives a last frame
    without a duration its length, and spaces the frames of a stream without timestamps (a raw
    .h264 file), whose count is still exact. None where ffmpeg cannot list the packets."""
    res = _run_ffmpeg(["-i", os.fspath(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"], capture=True)
    if res.returncode != 0:
        log.warning("cannot list the frames of %s (%s); taking them as they come",
                    path, _last_ffmpeg_line(res.stderr.decode(errors="replace")))
        return None
    time_base, pts, durations = None, [], []
    for line in res.stdout.decode(errors="replace").splitlines():
        if line.startswith("#tb 0:"):
            num, den = line.split(":", 1)[1].strip().split("/")
            time_base = Fraction(int(num), int(den))
        elif line and not line.startswith("#"):
            fields = [part.strip() for part in line.split(",")]
            flags = fields[6].partition("F=")[2] if len(fields) > 6 else ""
            if flags and int(flags, 16) & 4:  # AV_PKT_FLAG_DISCARD: decoded, never shown (edit lists)
                continue
            pts.append(int(fields[2]))
            durations.append(int(fields[3]))
    if time_base is None or not pts:
        return None
    rate = fps if fps > 0 else 25.0
    if NO_PTS in pts:
        return Timeline(times=np.arange(len(pts), dtype=np.float64) / rate, end=len(pts) / rate, timed=False)
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    times = np.asarray(pts, dtype=np.float64)[order] * float(time_base)
    last = durations[order[-1]] * float(time_base)
    if last <= 0:
        gaps = np.diff(times)
        last = float(np.median(gaps)) if len(gaps) else 1.0 / rate
    return Timeline(times=times, end=float(times[-1] + last))


def iter_video_frames(
    path: str | os.PathLike,
    chunk: int = 32,
    start: float = 0.0,
    max_frames: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield uint8 RGB frames [b,H,W,3], b <= chunk: every decoded frame once, in presentation order
    (none repeated or dropped to make a constant rate), from the first one shown at or after
    ``start`` seconds, at most ``max_frames`` in all.

    Only one chunk is held at a time. A file whose tail is damaged yields the frames before the damage
    (with a warning), as PaddleGAN's demo did; a file that yields no frame at all raises InputError.
    """
    path = check_input_file(path, "driving video")
    chunk = max(1, int(chunk))
    input_params = ["-ss", f"{float(start):.6f}"] if start and start > 0 else []
    output_params = ["-map", "0:v:0", "-fps_mode", "passthrough"]
    output_params += ["-frames:v", str(int(max_frames))] if max_frames else []
    gen, meta = _open_reader(path, input_params, output_params)
    width, height = (int(v) for v in meta["size"])
    frame_bytes = width * height * 3
    done = 0
    buf: list[bytes] = []
    try:
        while max_frames is None or done + len(buf) < max_frames:
            try:
                raw = next(gen)
            except StopIteration:
                break
            except RuntimeError as err:
                if done + len(buf) == 0:
                    raise InputError(f"cannot read video {path}: {_last_ffmpeg_line(str(err))}") from None
                log.warning("driving video %s is damaged after frame %d; using the frames before", path,
                            done + len(buf))
                break
            if len(raw) != frame_bytes:
                break
            buf.append(raw)
            if len(buf) == chunk:
                done += len(buf)
                yield _to_array(buf, height, width)
                buf = []
        if buf:
            done += len(buf)
            yield _to_array(buf, height, width)
            buf = []
    finally:
        gen.close()
    if done == 0:
        where = f" after {start:g} s" if start else ""
        raise InputError(f"video has no frames{where}: {path}")


def _to_array(buf: list[bytes], height: int, width: int) -> np.ndarray:
    return np.frombuffer(b"".join(buf), dtype=np.uint8).reshape(len(buf), height, width, 3)


def check_output_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create the output folder; refuse an existing result unless `overwrite` (checked before any work)."""
    return atomic.check_target(path, overwrite)


def _fps_arg(fps: float) -> str:
    """An exact rational for ffmpeg (29.97 -> 30000/1001) so long outputs don't drift."""
    frac = Fraction(fps).limit_denominator(1001)
    return f"{frac.numerator}/{frac.denominator}"


def _run_ffmpeg(args: list[str], capture: bool = False) -> subprocess.CompletedProcess:
    """Run ffmpeg in its own session (Ctrl-C goes to Python, which then stops it); capture stderr, and
    stdout when ``capture``."""
    proc = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args],
                            stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out or b"", err)


def mux_audio(video_path: str | os.PathLike, audio_source: str | os.PathLike, out_path: str | os.PathLike,
              start: float = 0.0, duration: float | None = None) -> str:
    """Copy the first audio track of `audio_source` (from `start`, for `duration` s) beside the video.

    The video stream is copied; the audio is copied too where the container accepts its codec, else it
    is encoded (Opus for WebM, AAC otherwise). Every video frame is kept: a shorter audio track just
    ends early (no ``-shortest``, which would cut the video to the audio), a longer one is cut at
    `duration` (the video's length). Returns "copy", "opus" or "aac".
    """
    cut = (["-ss", f"{start:.6f}"] if start and start > 0 else []) + \
        (["-t", f"{duration:.6f}"] if duration else [])
    base = ["-i", os.fspath(video_path), *cut, "-i", os.fspath(audio_source),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy"]
    tail = ["-movflags", "+faststart", os.fspath(out_path)]
    res = _run_ffmpeg([*base, "-c:a", "copy", *tail])
    if res.returncode == 0:
        return "copy"
    codec = CONTAINERS[container_of(out_path) or DEFAULT_CONTAINER].audio_encoder
    log.info("audio copy failed (%s); encoding to %s", _last_ffmpeg_line(res.stderr.decode(errors="replace")), codec)
    res = _run_ffmpeg([*base, "-c:a", codec, "-b:a", "192k", *tail])
    if res.returncode != 0:
        said = res.stderr.decode(errors="replace")
        raise atomic.disk_error(Path(out_path).parent, said) or \
            VideoError(f"could not add the audio track: {_last_ffmpeg_line(said)}")
    return "opus" if codec == "libopus" else "aac"


class _StderrTail(threading.Thread):
    """Drain a pipe so ffmpeg never blocks on it; keep the last lines for error messages."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines: list[str] = []

    def run(self) -> None:
        for line in iter(self.pipe.readline, b""):
            self.lines.append(line.decode(errors="replace").rstrip())
            del self.lines[:-20]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def last(self) -> str:
        return _last_ffmpeg_line(self.text)


class VideoWriter:
    """Encode uint8 RGB frames chunk by chunk into `path`, atomically, optionally with audio.

    Use as a context manager: leaving the block normally finishes the file (encode, mux audio, move into
    place); leaving it with an exception (including KeyboardInterrupt) removes every temporary file and
    leaves any existing `path` untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        size: tuple[int, int],
        *,
        audio_source: str | os.PathLike | None = None,
        audio_start: float = 0.0,
        overwrite: bool = False,
        crf: float | None = DEFAULT_CRF,
        preset: str | None = DEFAULT_PRESET,
        codec: str = DEFAULT_CODEC,
        bit_depth: int = 8,
        color_space: str | None = None,
    ) -> None:
        """``crf``/``preset``: None leaves the encoder's default. ``codec``: "h264" (libx264) or "av1"
        (libsvtav1; crf 0 is lossless). ``bit_depth`` 10 writes yuv420p10le. ``color_space``: None
        converts and tags nothing (ffmpeg's defaults); "sRGB" converts with the BT.709 matrix and
        tags BT.709/sRGB, "HDR"/"HDR PQ" the BT.2020 matrix and BT.2020 HLG/PQ (10-bit at least), as
        ComfyUI tags the videos it makes from images; the frames must already be in that space."""
        if codec not in VIDEO_ENCODERS:
            raise ValueError(f"codec must be one of {sorted(VIDEO_ENCODERS)}, got {codec!r}")
        if color_space is not None and color_space not in COLOR_SPACES:
            raise ValueError(f"color_space must be one of {sorted(COLOR_SPACES)} or None, got {color_space!r}")
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.width, self.height = int(size[0]), int(size[1])
        self.audio_source = os.fspath(audio_source) if audio_source else None
        self.audio_start = float(audio_start or 0.0)
        self.overwrite = overwrite
        self.crf = crf
        self.preset = preset
        self.codec = codec
        self.color_space = color_space
        hdr = color_space is not None and COLOR_SPACES[color_space][0] == "bt2020nc"
        self.bit_depth = 10 if hdr or int(bit_depth) >= 10 else 8
        self.frames_written = 0
        self.audio_mode: str | None = None
        self._proc: subprocess.Popen | None = None
        self._stderr: _StderrTail | None = None
        self._temps: list[str] = []
        # Even sizes for yuv420p: odd ones get one edge-replicated row/column.
        self._enc_w = self.width + (self.width % 2)
        self._enc_h = self.height + (self.height % 2)

    # -- temp files -------------------------------------------------------------------------------
    def _temp_name(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        name = os.fspath(atomic.new_partial(self.path if self.path.suffix else self.path.with_suffix(".mp4")))
        self._temps.append(name)
        return name

    def _failed(self, message: str, ffmpeg_says: str) -> FOMError:
        """ffmpeg's failure in our words: the disk's reason when ffmpeg names one, else ``message``."""
        return atomic.disk_error(self.path.parent, ffmpeg_says) or VideoError(message)

    def _start(self) -> None:
        self._video_tmp = self._temp_name()
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self._enc_w}x{self._enc_h}",
               "-framerate", _fps_arg(self.fps), "-i", "-",
               "-an", "-c:v", VIDEO_ENCODERS[self.codec], *self._quality_args(), *self._color_args(),
               "-pix_fmt", "yuv420p10le" if self.bit_depth >= 10 else "yuv420p"]
        if container_of(self.path) == "mp4" or not self.path.suffix:
            cmd += ["-movflags", "+faststart"]
        cmd.append(self._video_tmp)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
        self._stderr = _StderrTail(self._proc.stderr)
        self._stderr.start()

    def _quality_args(self) -> list[str]:
        args = []
        if self.preset is not None and self.codec == "h264":
            args += ["-preset", str(self.preset)]
        if self.crf is not None:
            crf = float(self.crf)
            text = str(int(crf)) if crf.is_integer() else f"{crf:g}"
            if self.codec == "av1" and crf == 0:
                args += ["-svtav1-params", "lossless=1"]
            else:
                args += ["-crf", text]
        return args

    def _color_args(self) -> list[str]:
        if self.color_space is None:
            return []
        matrix, primaries, transfer = COLOR_SPACES[self.color_space]
        swscale_matrix = "bt2020" if matrix == "bt2020nc" else matrix
        # scale converts; setparams tags the frames (the encoder takes the frames' tags)
        return ["-vf", f"scale=out_color_matrix={swscale_matrix}:out_range=tv,setparams=colorspace={matrix}:"
                       f"color_primaries={primaries}:color_trc={transfer}:range=tv"]

    # -- public API --------------------------------------------------------------------------------
    def write(self, frames: np.ndarray) -> None:
        """Append uint8 frames [b,H,W,3] (or one [H,W,3]) of the size given at construction."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8:
            raise TypeError(f"VideoWriter.write wants uint8 frames, got {frames.dtype}")
        if frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(f"frame shape {frames.shape[1:]} != {(self.height, self.width, 3)}")
        if len(frames) == 0:
            return
        if self._enc_w != self.width or self._enc_h != self.height:
            frames = np.pad(frames, ((0, 0), (0, self._enc_h - self.height), (0, self._enc_w - self.width),
                                     (0, 0)), mode="edge")
        if self._proc is None:
            self._start()
        try:
            self._proc.stdin.write(np.ascontiguousarray(frames).tobytes())
        except (BrokenPipeError, OSError):
            self._proc.wait()
            self._stderr.join(timeout=5)
            raise self._failed(f"video encoder stopped: {self._stderr.last}", self._stderr.text) from None
        self.frames_written += len(frames)

    def close(self) -> Path:
        """Finish encoding, add audio, and move the file into place. Returns the final path."""
        try:
            return self._finish()
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> Path:
        if self._proc is None:
            raise VideoError("no frames were written; nothing to save")
        self._proc.stdin.close()
        rc = self._proc.wait()
        self._stderr.join(timeout=5)
        if rc != 0:
            raise self._failed(f"video encoder failed (exit {rc}): {self._stderr.last}", self._stderr.text)
        final_tmp = self._video_tmp
        if self.audio_source:
            muxed = self._temp_name()
            self.audio_mode = mux_audio(self._video_tmp, self.audio_source, muxed, start=self.audio_start,
                                        duration=self.frames_written / self.fps)
            final_tmp = muxed
        self._commit(final_tmp)
        self._cleanup()
        return self.path

    def abort(self) -> None:
        """Stop the encoder and delete every temporary file (the final path is never touched)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def _commit(self, tmp: str) -> None:
        atomic.commit(tmp, self.path, self.overwrite)

    def _cleanup(self) -> None:
        for name in self._temps:
            atomic.remove(name)
        self._temps = []

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")


def probe(path: str | os.PathLike) -> dict:
    """Streams of a media file as ffmpeg reports them (for tests and checks): size, fps, audio codec."""
    res = _run_ffmpeg(["-i", os.fspath(path)])
    text = res.stderr.decode(errors="replace")
    out: dict = {"video": None, "audio": None, "duration": None}
    m = _DURATION_RE.search(text)
    if m:
        out["duration"] = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    for line in text.splitlines():
        if "Stream #" in line and "Video:" in line and out["video"] is None:
            size = re.search(r",\s*(\d+)x(\d+)", line)
            fps = re.search(r"([\d.]+) fps", line)
            out["video"] = {
                "codec": line.split("Video:", 1)[1].split()[0].strip(","),
                "size": (int(size.group(1)), int(size.group(2))) if size else None,
                "fps": float(fps.group(1)) if fps else None,
            }
        if "Stream #" in line and "Audio:" in line and out["audio"] is None:
            out["audio"] = {"codec": line.split("Audio:", 1)[1].split()[0].strip(",")}
    return out
