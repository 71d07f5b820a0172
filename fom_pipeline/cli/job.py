"""One run of the animation command, read from its flags with each check made once, before any network
is loaded: a typo fails in a second, not after the model ran."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..codecs import check_video_name
from ..errors import InputError
from ..options import AnimationOptions, PasteOptions, paddlegan_paste
from ..pictures import read_image, read_mask

if TYPE_CHECKING:
    from ..pipeline import DrivingKeypoints
    from ..streams import AudioTrack, VideoFile


def resolve_device(text: str, cpu: bool = False) -> str:
    """Check a --device value against what this machine has (the engine's rules); --cpu wins."""
    from ..devices import resolve_device as engine_resolve

    return "cpu" if cpu else str(engine_resolve(text or "auto"))


def _output_path(args: argparse.Namespace) -> Path:
    from ..video import check_output_path

    name = args.filename
    if not name or os.path.basename(name) != name:
        raise InputError(f"--filename {name!r} must be a plain file name; put folders in --output")
    if not Path(name).suffix:
        raise InputError(f"--filename {name!r} has no extension; use e.g. result.mp4")
    check_video_name(name, what="--filename")
    return check_output_path(Path(args.output) / name, overwrite=args.overwrite)


def _frame_limit(args: argparse.Namespace, fps: float) -> int | None:
    limits = []
    if args.max_frames:
        limits.append(args.max_frames)
    if args.duration is not None:
        if args.duration <= 0:
            raise InputError("--duration must be above 0 seconds")
        limits.append(max(1, int(round(args.duration * (fps or 25.0)))))
    return min(limits) if limits else None


def _motion_clip(args: argparse.Namespace):
    """--driving_motion, cut by --start / --duration / --max_frames as a video would be."""
    from ..motion_file import load_motion
    from ..pipeline import DrivingKeypoints

    motion = load_motion(args.driving_motion)
    first = int(round(args.start * motion.fps))
    if first >= len(motion):
        raise InputError(f"--start {args.start:g} s is past the end of the motion file "
                         f"({len(motion) / motion.fps:g} s): {args.driving_motion}")
    limit = _frame_limit(args, motion.fps)
    keypoints = motion.keypoints[first : first + limit if limit else None]
    return DrivingKeypoints(keypoints, motion.fps, None, motion.name, motion.detector)


def _driving_video(args: argparse.Namespace, fps: float | None):
    """--driving_video as a stream, cut by --start / --duration / --max_frames and read at ``fps`` (--fps,
    or a source video's rate)."""
    from ..streams import VideoFile
    from ..video import read_video_meta

    meta = read_video_meta(args.driving_video)
    if args.start and meta.duration and args.start >= meta.duration:
        raise InputError(f"--start {args.start:g} s is past the end of the driving video "
                         f"({round(meta.duration, 2):g} s)")
    _frame_limit(args, meta.fps)  # checks --duration
    return VideoFile(meta.path, start=args.start, max_frames=args.max_frames, duration=args.duration,
                     fps=fps, audio=not args.no_audio, meta=meta)


def sound_choice(args: argparse.Namespace) -> str:
    """Where the result's sound comes from: "source" (a source video's, its default), "driving" (a
    photo's default), "none", or "file" (--audio FILE)."""
    if args.no_audio or args.audio == "none":
        return "none"
    if args.audio in ("source", "driving"):
        return args.audio
    if args.audio:
        return "file"
    return "source" if args.source_video else "driving"


def _audio_track(args: argparse.Namespace):
    """--audio FILE as the result's sound track, from --start like the motion (None without the flag)."""
    from ..streams import AudioTrack
    from ..video import probe

    if sound_choice(args) != "file":
        return None
    path = os.fspath(Path(args.audio).expanduser())
    if not os.path.isfile(path):
        raise InputError(f"audio file not found: {path} (check --audio)")
    if probe(path)["audio"] is None:
        raise InputError(f"--audio {path} has no audio track ffmpeg can read (give a file with sound)")
    return AudioTrack(path, args.start)


def _check_best_frame(args: argparse.Namespace, frames: int) -> None:
    """--best_frame must lie inside a clip of ``frames`` frames."""
    if args.best_frame is not None and frames > 0 and args.best_frame >= frames:
        raise InputError(f"--best_frame {args.best_frame} is past the end of the clip ({frames} frames)")


def _hand_boxes(args: argparse.Namespace, image: np.ndarray) -> list | None:
    """--faces parsed and checked against the photo (None without the flag)."""
    if args.faces is None:
        return None
    from ..faces import make_faces, parse_boxes

    boxes = parse_boxes(args.faces)
    make_faces(image.shape[:2], boxes, crop_mode=args.crop_mode)
    if not boxes:
        raise InputError("--faces has no boxes; write them as x1,y1,x2,y2;x1,y1,x2,y2")
    return boxes


@dataclass(frozen=True)
class Job:
    """One run, read from the flags with each check made once, before any network is loaded.

    ``driving`` is the driving video's stream, or None with ``motion`` (a --driving_motion file's
    keypoints, already cut); ``boxes`` are the --faces boxes (None: detect them). ``source`` is the
    --source_video stream (None for a photo), and then ``image`` is its first frame.
    """

    args: argparse.Namespace
    output: Path
    image: np.ndarray
    source: VideoFile | None
    driving: VideoFile | None
    motion: DrivingKeypoints | None
    audio: AudioTrack | None
    boxes: list | None
    mask: np.ndarray | None
    device: str
    animation: AnimationOptions
    paste: PasteOptions

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Job:
        # Cheap checks first, so a typo fails in a second, not after loading networks.
        output = _output_path(args)
        source = None
        if args.source_video:
            from ..video_source import first_frame, open_source_video

            source = open_source_video(args.source_video, fps=args.fps)
            image = np.asarray(first_frame(source))
        else:
            image = read_image(args.source_image)
        driving = motion = None
        if args.driving_motion:
            motion = _motion_clip(args)
            expected = len(motion.at_rate(source.fps)) if source is not None else len(motion)
        else:
            driving = _driving_video(args, source.fps if source is not None else args.fps)
            expected = driving.frame_count
        audio = _audio_track(args)
        if args.save_motion:
            from ..motion_file import check_motion_output

            check_motion_output(args.save_motion, args.overwrite, "--save_motion")
        _check_best_frame(args, expected)
        boxes = _hand_boxes(args, image)
        mask = read_mask(args.mask, image.shape[:2]) if args.mask else None
        reference: int | str = args.best_frame if args.best_frame is not None else \
            "best" if args.find_best_frame else 0
        animation = AnimationOptions(relative=args.relative, adapt_scale=args.adapt_scale, reference_frame=reference)
        paste = PasteOptions(ratio=args.ratio, feather=args.feather, color_match=args.color_match or False)
        return cls(args, output, image, source, driving, motion, audio, boxes, mask,
                   resolve_device(args.device, args.cpu), animation, paste)

    def paste_for(self, faces: int) -> tuple[PasteOptions, bool]:
        """The paste options for ``faces`` animated faces, and whether to quantize them first (PaddleGAN's
        demo pastes its own crops its own way: see :func:`fom_pipeline.options.paddlegan_paste`)."""
        return paddlegan_paste(self.paste, self.args.crop_mode, faces)
