"""The video codecs, containers and colour spaces results are written with: one table each, read by the
writer (video.py), the command line (which names it checks before any work) and the nodes (Save Video's
choices). Adding a codec or a container is a row here."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InputError

# codec -> the ffmpeg encoder that writes it
VIDEO_ENCODERS = {"h264": "libx264", "av1": "libsvtav1"}
DEFAULT_CODEC = "h264"
DEFAULT_CRF = 18  # h264's visually lossless setting; av1 keeps its encoder's default unless asked
DEFAULT_PRESET = "medium"
# colour space -> (matrix, primaries, transfer) as ffmpeg names them (ComfyUI's Save Video choices)
COLOR_SPACES = {
    "sRGB": ("bt709", "bt709", "iec61966-2-1"),
    "HDR": ("bt2020nc", "bt2020", "arib-std-b67"),
    "HDR PQ": ("bt2020nc", "bt2020", "smpte2084"),
}


@dataclass(frozen=True)
class Container:
    """A container results are written in: its file suffixes, the codecs it takes (the first is its
    default), the format names ffmpeg reads it back as (what a VIDEO reports) and the ffmpeg encoder
    for a sound track it cannot take as it is."""

    suffixes: tuple[str, ...]
    codecs: tuple[str, ...]
    format_names: str
    audio_encoder: str = "aac"


CONTAINERS = {
    "mp4": Container((".mp4", ".m4v", ".mov"), ("h264", "av1"), "mov,mp4,m4a,3gp,3g2,mj2"),
    "mkv": Container((".mkv",), ("h264", "av1"), "matroska,webm"),
    "webm": Container((".webm",), ("av1",), "matroska,webm", audio_encoder="libopus"),  # WebM takes Opus, not AAC
}
DEFAULT_CONTAINER = "mp4"


def container_of(path: str | os.PathLike) -> str | None:
    """The container a file name asks for by its suffix, else None."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    return next((name for name, c in CONTAINERS.items() if suffix in c.suffixes), None)


def default_codec(container: str) -> str:
    return CONTAINERS[container].codecs[0] if container in CONTAINERS else DEFAULT_CODEC


def check_video_name(path: str | os.PathLike, codec: str = DEFAULT_CODEC, what: str = "output file") -> str:
    """The container a result named ``path`` is written in with ``codec``; a name no container of
    ours takes with that codec is refused (checked before any work, not by ffmpeg at the end)."""
    container = container_of(path)
    takes = [s for c in CONTAINERS.values() if codec in c.codecs for s in c.suffixes]
    if container is None or codec not in CONTAINERS[container].codecs:
        raise InputError(f"{what} {os.path.basename(os.fspath(path))!r} is not a video name this writes "
                         f"{codec} into; end it in {', '.join(takes)}")
    return container
