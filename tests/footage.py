"""Generated footage for the timing tests: clips whose every frame says which frame it is.

Each frame carries its index as a 10-bit code (ten 16 px blocks across the top half, white = 1) and
a bar that moves 8 px a frame across the bottom half, so a dropped, repeated or reordered frame is
visible after any lossy codec. Frame times are given as segments of (frame count, rate), so a clip
can be variable-rate like a phone's; the clips are encoded by imageio-ffmpeg's ffmpeg binary.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from fom_pipeline.video import ffmpeg_exe

WIDTH, HEIGHT = 160, 96
BITS = 10

CODECS = {
    "h264": ["-c:v", "libx264", "-bf", "3", "-g", "12", "-crf", "18", "-pix_fmt", "yuv420p"],
    "hevc10": ["-c:v", "libx265", "-x265-params", "log-level=error", "-crf", "20", "-pix_fmt", "yuv420p10le",
               "-tag:v", "hvc1"],
    "av1": ["-c:v", "libaom-av1", "-cpu-used", "8", "-crf", "30", "-row-mt", "1"],
    "gif": ["-pix_fmt", "rgb8"],
}


def code_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """uint8 RGB [H,W,3]: ``index`` in binary across the top half, a moving bar in the bottom half."""
    frame = np.full((height, width, 3), 16, np.uint8)
    block = width // BITS
    for bit in range(BITS):
        if index >> bit & 1:
            frame[: height // 2, bit * block : (bit + 1) * block] = 235
    x = (index * 8) % width
    frame[height // 2 + 8 : height - 8, x : x + 8] = 235
    return frame


def read_code(frame: np.ndarray) -> int:
    """The index a :func:`code_frame` carries (read from block centres, so codec blur does not matter)."""
    height, width = frame.shape[:2]
    block = width // BITS
    top = frame[height // 8 : height // 2 - height // 8].astype(np.float32).mean(axis=(0, 2))
    return sum(1 << bit for bit in range(BITS)
               if top[bit * block + block // 4 : (bit + 1) * block - block // 4].mean() > 128)


def frame_times(segments: list[tuple[int, float]]) -> list[float]:
    """Presentation time of each frame for segments of (count, rate) played one after another."""
    times, t = [], 0.0
    for count, rate in segments:
        times += [t + k / rate for k in range(count)]
        t += count / rate
    return times


def _setpts(segments: list[tuple[int, float]]) -> str:
    """A setpts expression giving frame N its time in the segments (nested ifs, one per segment)."""
    first, t = 0, 0.0
    parts = []
    for count, rate in segments:
        parts.append((first + count, f"({t!r}+(N-{first})/{rate!r})"))
        first += count
        t += count / rate
    expr = parts[-1][1]
    for end, value in reversed(parts[:-1]):
        expr = f"if(lt(N,{end}),{value},{expr})"
    return f"settb=1/6000,setpts='({expr})/TB'"


def make_clip(path: Path, segments: list[tuple[int, float]], codec: str = "h264", *,
              audio_seconds: float | None = None, rotation: int | None = None,
              size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    """Encode coded frames 0..N-1 at the segments' times into ``path`` (VFR where rates differ).

    ``audio_seconds``: add that long a 48 kHz stereo AAC tone. ``rotation``: store the picture as is
    with a display matrix turning it ``rotation`` degrees counter-clockwise (a phone held upright).
    """
    path = Path(path)
    width, height = size
    count = sum(n for n, _ in segments)
    raw = b"".join(code_frame(i, width, height).tobytes() for i in range(count))
    target = path.with_name(f"unrotated_{path.name}") if rotation else path
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
           "-framerate", repr(segments[-1][1]), "-i", "-"]  # the rate sets the last frame's duration
    if audio_seconds:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={audio_seconds}"]
    cmd += ["-vf", _setpts(segments), "-fps_mode", "vfr", "-enc_time_base:v", "1/6000", *CODECS[codec]]
    if audio_seconds:
        cmd += ["-ac", "2", "-c:a", "aac"]
    subprocess.run([*cmd, str(target)], input=raw, check=True)
    if rotation:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", str(rotation), "-i", str(target),
                        "-c", "copy", str(path)], check=True)
        target.unlink()
    return path
