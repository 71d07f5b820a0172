"""The command line: PaddleGAN's ``first-order-demo.py`` made solid, plus ``convert``.

``python -m fom_pipeline --source_image IMG --driving_video VID [...]`` animates the faces of a photo;
``python -m fom_pipeline convert IN OUT.safetensors`` converts a checkpoint. The command calls the same
engine functions as the ComfyUI nodes; all it adds is argument parsing, streaming video in and out,
progress bars and one-line errors.

Streaming (fom_pipeline.pipeline, the same steps the ComfyUI nodes run): pass 1 reads the driving video
chunk by chunk (through its fixed face window when asked) and keeps only its keypoints; pass 2 drives
every face batch by batch, pastes the batch into the photo and hands it to the encoder. Memory therefore
does not grow with the video's length.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import FOMError, InputError, WeightsMissingError
from .options import AnimationOptions, PasteOptions

if TYPE_CHECKING:
    from .pipeline import DrivingKeypoints
    from .streams import AudioTrack, VideoFile

log = logging.getLogger("fom_pipeline")

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (`error: ...`) instead of usage + message."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def _ratio(text: str) -> float:
    from .options import check_ratio

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"ratio must be a number, got {text!r}") from None
    try:
        return check_ratio(value)
    except InputError as err:
        raise argparse.ArgumentTypeError(err.worded("cli")) from None


def _int_at_least(minimum: int):
    """An argparse type for whole numbers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def _frame_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frames per second, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 240:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 240 frames per second, got {text}")
    return value


def _feather(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("px"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected pixels, got {text!r}") from None
    try:
        return PasteOptions(feather=value).feather
    except InputError as err:
        raise argparse.ArgumentTypeError(err.worded("cli")) from None


def build_parser() -> argparse.ArgumentParser:
    """The animation command's flags: the seed's (same names, meanings, defaults) and ours."""
    p = _Parser(
        prog="fom-animate",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=30, width=120),
        description="Animate the faces of a photo with a driving video (First Order Motion Model). "
        "Also: `fom-animate convert IN OUT.safetensors` converts a checkpoint.",
    )
    seed = p.add_argument_group("the seed's flags (PaddleGAN first-order-demo.py)")
    seed.add_argument("--source_image", required=True, help="photo whose faces are animated")
    seed.add_argument("--driving_video", default=None,
                      help="video whose motion drives the faces (or give --driving_motion instead)")
    seed.add_argument("--output", default="output", help="output folder (default: output)")
    seed.add_argument("--filename", default="result.mp4", help="output file name in that folder (default: result.mp4)")
    seed.add_argument("--relative", action="store_true", help="move keypoints relative to the first frame (recommended)")
    seed.add_argument("--adapt_scale", action="store_true", help="scale the motion to the source face's keypoint spread")
    seed.add_argument("--ratio", type=_ratio, default=0.4,
                      help="paste circle radius as a fraction of the crop height, 0.1-1.0 (default: 0.4)")
    seed.add_argument("--multi_person", action="store_true",
                      help="animate every face found; without it only one face is animated, as in the seed")
    seed.add_argument("--find_best_frame", action="store_true",
                      help="start from the driving frame that best matches the source face's pose")
    seed.add_argument("--best_frame", type=_non_negative_int, default=None,
                      help="use driving frame N (of the clip used) as the reference frame")
    seed.add_argument("--image_size", type=_positive_int, default=None,
                      help="crop size the model runs at, the size it was trained at (default: stored in the "
                           "file or named in it, e.g. vox-cpk-512, else 256); 512 picks the 512 release when "
                           "downloading")
    seed.add_argument("--batch_size", type=_positive_int, default=1,
                      help="frames generated per network call (default: 1, as the seed; raise it on a GPU)")
    seed.add_argument("--weight_path", default=None,
                      help="checkpoint (.pdparams, .pth.tar, .safetensors); default: models/fom/ or download")
    seed.add_argument("--face_detector", default="sfd", help="face detector backend (default: sfd, the seed's)")
    seed.add_argument("--cpu", action="store_true", help="run on the CPU (same as --device cpu)")
    seed.add_argument("--mobile_net", action="store_true", help="use PaddleGAN's mobile model when downloading weights")

    ours = p.add_argument_group("our additions")
    ours.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    ours.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                      help="network precision; auto: bf16 on CPUs with native bf16 (AVX-512 BF16 / AMX) and "
                           "GPUs that have it, else fp32 (fp16 on older GPUs) (default: auto)")
    ours.add_argument("--faces", default=None, metavar="BOXES",
                      help='face boxes by hand "x1,y1,x2,y2;..." in source-image pixels (skips the detector)')
    ours.add_argument("--crop_mode", choices=("square", "paddlegan"), default="square",
                      help="square crops around each face (default) or the seed's paddlegan window")
    ours.add_argument("--feather", type=_feather, default=None,
                      help="soft paste edge in pixels; 0 = the seed's hard edge (default: 10%% of the radius)")
    ours.add_argument("--color_match", nargs="?", const="lab", default=None, choices=("lab", "rgb"),
                      help="match each pasted face's colours to the photo (lab by default, or rgb)")
    ours.add_argument("--crop_driving", action="store_true",
                      help="crop the driving video to a fixed window around its face (for uncropped videos)")
    ours.add_argument("--max_frames", type=_positive_int, default=None, help="use at most N driving frames")
    ours.add_argument("--start", type=_seconds, default=0.0, help="skip this many seconds of the driving video")
    ours.add_argument("--duration", type=_seconds, default=None, help="use this many seconds of the driving video")
    ours.add_argument("--fps", type=_frame_rate, default=None,
                      help="frame rate of the result (default: the driving video's, as a player shows it); "
                           "driving frames are taken at their real times, so variable-rate clips play in real time")
    ours.add_argument("--no_audio", action="store_true", help="do not copy the driving video's audio track")
    ours.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    ours.add_argument("--warp_border", choices=("auto", "paddlegan", "plain"), default="auto",
                      help="how warping treats the crop border (default: auto, from the checkpoint)")
    ours.add_argument("--mask", default=None, metavar="FILE",
                      help="grayscale image the photo's size: white = animated face, black = photo (grey blends); "
                           "replaces the circle of each face it covers, feathered like the circle")
    ours.add_argument("--restore_model", default=None, metavar="FILE",
                      help="face restoration model (GFPGAN, RestoreFormer, ...; .safetensors/.pth) run on every "
                           "animated face before pasting; needs `pip install spandrel`")
    ours.add_argument("--quiet", action="store_true", help="no progress bars or notes (errors and summary only)")

    motion = p.add_argument_group("motion: smoothing and motion files")
    motion.add_argument("--smooth", type=_non_negative_int, default=0, metavar="N",
                        help="smooth the driving keypoints over about N frames, without delaying them "
                             "(0 = off, the seed's behaviour; 3-8 calms jitter)")
    motion.add_argument("--save_motion", default=None, metavar="FILE",
                        help="also save the driving motion this run uses (keypoints after --smooth, fps, clip name) "
                             "to FILE.safetensors; --driving_motion FILE gives the same animation again")
    motion.add_argument("--driving_motion", default=None, metavar="FILE",
                        help="drive the faces with a saved motion file instead of --driving_video (same model)")
    motion.add_argument("--audio", default=None, metavar="FILE",
                        help="audio track for the result (any file with sound); replaces the driving video's")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The animation command's flags, with the checks that involve more than one flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.driving_video and not args.driving_motion:
        parser.error("the following arguments are required: --driving_video (or --driving_motion FILE)")
    if args.driving_video and args.driving_motion:
        parser.error("give --driving_video or --driving_motion, not both")
    if args.driving_motion and args.crop_driving:
        parser.error("--crop_driving needs --driving_video (a motion file's keypoints are already of the face)")
    if args.audio and args.no_audio:
        parser.error("--audio and --no_audio contradict each other; give one")
    if args.fps and args.driving_motion:
        parser.error("--fps re-times --driving_video; a motion file keeps the rate it was saved with")
    return args


def build_convert_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fom-animate convert",
                description="Convert a checkpoint (.pth.tar, .pdparams, .safetensors) to our .safetensors.")
    p.add_argument("input", help="checkpoint to read")
    p.add_argument("output", help="the .safetensors file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p


# ---------------------------------------------------------------------------------------------------
# inputs


def _decode_picture(path: str | os.PathLike, flags: int, what: str, where: str, use: str) -> np.ndarray:
    """A picture file decoded by OpenCV with ``flags``; a missing, unreadable or non-image file is refused
    in one line naming ``what`` it is, ``where`` to look and what to ``use`` instead."""
    import cv2

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{what} not found: {path} ({where})")
    if os.path.isdir(path):
        raise InputError(f"{what} is a folder, not a file: {path}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise InputError(f"{what} is not readable: {path} ({err.strerror or err})") from None
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise InputError(f"{what} is not an image OpenCV can read: {path} ({use})")
    return image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The source photo as uint8 RGB [H,W,3] (grey made RGB, alpha dropped, 16-bit scaled)."""
    import cv2

    image = _decode_picture(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH, "source image", "check the path",
                            "use a PNG or JPEG")
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[:, :, ::-1])


MASK_GREY_TOLERANCE = 8  # levels (of 255) the channels of a "grey" colour file may differ by (JPEG noise)


def read_mask(path: str | os.PathLike, photo_hw: tuple[int, int]) -> np.ndarray:
    """--mask FILE as float32 [H,W] in [0, 1]: the image's grey level, white = animated face.

    Colour files must be grey (equal channels); a file with transparency is refused rather than
    guessed at (ComfyUI's Load Image reads transparency as its mask, other tools the opposite).
    The size must be the photo's.
    """
    import cv2

    from .faces.paste import as_mask

    path = os.fspath(path)
    mask = _decode_picture(path, cv2.IMREAD_UNCHANGED, "mask", "check --mask", "use a grayscale PNG")
    peak = float(np.iinfo(mask.dtype).max) if np.issubdtype(mask.dtype, np.integer) else 1.0
    mask = mask.astype(np.float32) / peak
    if mask.ndim == 3 and mask.shape[2] in (2, 4):
        if mask[..., -1].min() < 1.0:
            raise InputError(f"mask {path} has transparency; --mask reads grey levels (white = animated face, "
                             "black = photo): save it as a grayscale image without alpha")
        mask = mask[..., :-1]
    if mask.ndim == 3:
        if np.abs(mask - mask.mean(axis=2, keepdims=True)).max() > MASK_GREY_TOLERANCE / 255.0:
            raise InputError(f"mask {path} is in colour; --mask reads grey levels (white = animated face, "
                             "black = photo): give a grayscale image")
        mask = mask.mean(axis=2)
    return as_mask(mask, photo_hw, what=f"mask {os.path.basename(path)}")


def resolve_device(text: str, cpu: bool = False) -> str:
    """Check a --device value against what this machine has (the engine's rules); --cpu wins."""
    from .model import resolve_device as engine_resolve

    return "cpu" if cpu else str(engine_resolve(text or "auto"))


def resolve_weights(args: argparse.Namespace, progress: bool) -> Path:
    """--weight_path, else the models folder (fom/), else download the release the seed uses."""
    from . import weights

    if args.weight_path:
        path = Path(args.weight_path).expanduser()
        if not path.is_file():
            raise InputError(f"weights not found: {path} (check --weight_path)")
        if not os.access(path, os.R_OK):
            raise InputError(f"weights are not readable: {path} (check its permissions)")
        return path
    key = "vox-mobile" if args.mobile_net else ("vox-cpk-512" if args.image_size == 512 else "vox-cpk")
    info = weights.KNOWN_WEIGHTS[key]
    converted = [Path(name).stem + ".safetensors" for name in info.names]
    found = next(filter(None, map(weights.find_weights, converted)), None) or weights.find_weights(key)
    if found is not None:
        return found
    try:  # a download is checked to read as a checkpoint before it is moved into place
        return weights.ensure_weights(key, progress=progress)
    except WeightsMissingError as err:
        raise WeightsMissingError(f"{str(err).rstrip('.')}, or pass --weight_path FILE") from None


def _output_path(args: argparse.Namespace) -> Path:
    from .video import check_output_path

    name = args.filename
    if not name or os.path.basename(name) != name:
        raise InputError(f"--filename {name!r} must be a plain file name; put folders in --output")
    if not Path(name).suffix:
        raise InputError(f"--filename {name!r} has no extension; use e.g. result.mp4")
    return check_output_path(Path(args.output) / name, overwrite=args.overwrite)


# ---------------------------------------------------------------------------------------------------
# progress


class _Bars:
    """tqdm bars on stderr with rate and time left; all off with --quiet."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def bar(self, desc: str, total: int | None, unit: str = "frame"):
        from tqdm import tqdm

        return tqdm(total=total or None, desc=desc, unit=unit, disable=self.quiet, file=sys.stderr,
                    dynamic_ncols=True, leave=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# the job


@dataclass
class Summary:
    faces: int
    frames: int
    seconds: float
    output: Path
    audio: str | None

    def line(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else float("inf")
        face_word = "face" if self.faces == 1 else "faces"
        audio = f", audio {self.audio}" if self.audio else ""
        return (f"animated {self.faces} {face_word}, {self.frames} frames in {self.seconds:.1f} s "
                f"({fps:.2f} frames/s){audio} -> {self.output}")


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
    from .motion_file import load_motion
    from .pipeline import DrivingKeypoints

    motion = load_motion(args.driving_motion)
    first = int(round(args.start * motion.fps))
    if first >= len(motion):
        raise InputError(f"--start {args.start:g} s is past the end of the motion file "
                         f"({len(motion) / motion.fps:g} s): {args.driving_motion}")
    limit = _frame_limit(args, motion.fps)
    keypoints = motion.keypoints[first : first + limit if limit else None]
    return DrivingKeypoints(keypoints, motion.fps, None, motion.name, motion.detector)


def _driving_video(args: argparse.Namespace):
    """--driving_video as a stream, cut by --start / --duration / --max_frames and re-timed by --fps."""
    from .streams import VideoFile
    from .video import read_video_meta

    meta = read_video_meta(args.driving_video)
    if args.start and meta.duration and args.start >= meta.duration:
        raise InputError(f"--start {args.start:g} s is past the end of the driving video "
                         f"({round(meta.duration, 2):g} s)")
    _frame_limit(args, meta.fps)  # checks --duration
    return VideoFile(meta.path, start=args.start, max_frames=args.max_frames, duration=args.duration,
                     fps=args.fps, audio=not args.no_audio, meta=meta)


def _audio_track(args: argparse.Namespace):
    """--audio FILE as the result's sound track, from --start like the motion (None without the flag)."""
    from .streams import AudioTrack
    from .video import probe

    if not args.audio:
        return None
    path = os.fspath(Path(args.audio).expanduser())
    if not os.path.isfile(path):
        raise InputError(f"audio file not found: {path} (check --audio)")
    if probe(path)["audio"] is None:
        raise InputError(f"--audio {path} has no audio track ffmpeg can read (give a file with sound)")
    return AudioTrack(path, args.start)


def _check_best_frame(args: argparse.Namespace, frames: int) -> None:
    if args.best_frame is not None and frames > 0 and args.best_frame >= frames:
        raise InputError(f"--best_frame {args.best_frame} is past the end of the clip ({frames} frames)")


def _hand_boxes(args: argparse.Namespace, image: np.ndarray) -> list | None:
    """--faces parsed and checked against the photo (None without the flag)."""
    if args.faces is None:
        return None
    from .faces import make_faces, parse_boxes

    boxes = parse_boxes(args.faces)
    make_faces(image.shape[:2], boxes, crop_mode=args.crop_mode)
    if not boxes:
        raise InputError("--faces has no boxes; write them as x1,y1,x2,y2;x1,y1,x2,y2")
    return boxes


@dataclass(frozen=True)
class Job:
    """One run, read from the flags with each check made once, before any network is loaded.

    ``driving`` is the driving video's stream, or None with ``motion`` (a --driving_motion file's
    keypoints, already cut); ``boxes`` are the --faces boxes (None: detect them).
    """

    args: argparse.Namespace
    output: Path
    image: np.ndarray
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
        image = read_image(args.source_image)
        driving = motion = None
        if args.driving_motion:
            motion = _motion_clip(args)
            expected = len(motion)
        else:
            driving = _driving_video(args)
            expected = driving.frame_count
        audio = _audio_track(args)
        if args.save_motion:
            from .motion_file import check_motion_output

            check_motion_output(args.save_motion, args.overwrite, "--save_motion")
        _check_best_frame(args, expected)
        boxes = _hand_boxes(args, image)
        mask = read_mask(args.mask, image.shape[:2]) if args.mask else None
        reference: int | str = args.best_frame if args.best_frame is not None else \
            "best" if args.find_best_frame else 0
        animation = AnimationOptions(relative=args.relative, adapt_scale=args.adapt_scale, reference_frame=reference)
        paste = PasteOptions(ratio=args.ratio, feather=args.feather, color_match=args.color_match or False)
        return cls(args, output, image, driving, motion, audio, boxes, mask, resolve_device(args.device, args.cpu),
                   animation, paste)

    @property
    def seed_exact(self) -> bool:
        """The seed's paste: a lone face as its whole crop rectangle, its float predictions cast to uint8
        (truncating) before pasting."""
        return self.args.crop_mode == "paddlegan"

    def paste_for(self, faces: int) -> PasteOptions:
        """The paste options for ``faces`` animated faces (the seed's paste differs for a lone face)."""
        return replace(self.paste, shape="rect") if self.seed_exact and faces == 1 else self.paste


def _pick_faces(job: Job, detector, bars: _Bars) -> tuple[list, list | None]:
    """Boxes (and scores) to animate: typed by hand or detected; one face unless --multi_person."""
    from . import faces as F

    multi = job.args.multi_person
    if job.boxes is not None:
        if len(job.boxes) > 1 and not multi:
            bars.note(f"note: {len(job.boxes)} boxes given without --multi_person; animating only the first")
            return job.boxes[:1], None
        return job.boxes, None
    # Every face scoring 0.5 or more, left to right; without --multi_person the largest one (the
    # seed's intent; see faces.select_faces).
    with bars.bar("detect faces", 1, unit="image") as bar:
        try:
            found = F.detect_faces(detector, job.image.astype(np.float32) / 255.0, threshold=0.5,
                                   max_faces=0 if multi else 1, order="left_to_right")
        except F.FaceNotFoundError:
            raise F.FaceNotFoundError(
                "no face found in the source image (detector score 0.5 or more); give the faces by hand "
                'with --faces "x1,y1,x2,y2;x1,y1,x2,y2" (pixels)'
            ) from None
        bar.update(1)
    return [box for box, _ in found], [score for _, score in found]


def _tqdm_progress(bar) -> Callable[[int, int], None]:
    """An engine ``progress(done, total)`` that moves a tqdm bar."""

    def progress(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return progress


def load_detector(job: Job):
    """The face detector, when faces are detected or the driving video is cropped (else None)."""
    from . import faces as F

    args = job.args
    if job.boxes is not None and not args.crop_driving:
        return None
    try:
        return F.load_face_detector(backend=args.face_detector, device=job.device)
    except WeightsMissingError as err:
        hint = "" if args.crop_driving else "; or give the faces by hand with --faces x1,y1,x2,y2"
        raise WeightsMissingError(f"{str(err).rstrip('.')}{hint}") from None


def video_keypoints(job: Job, model, detector, bars: _Bars):
    """The driving video's keypoints, as read (through its fixed face window when asked): what
    depends only on the video, its cut and the model, so a batch computes it once per driver."""
    from . import pipeline as P

    driving = job.driving
    if job.args.crop_driving:
        with bars.bar("detect driving face", driving.frame_count) as bar:
            window = P.find_driving_window(detector, driving, progress=_tqdm_progress(bar))
        driving = P.CroppedFrames(driving, window, model.image_size)
    with bars.bar("keypoints", driving.frame_count) as bar:
        return P.driving_keypoints(model, driving, batch_size=max(job.args.batch_size, 8),
                                   progress=_tqdm_progress(bar))


def _driving_motion(job: Job, model, detector, bars: _Bars, read=None):
    """Pass 1: the driving video's keypoints (``read``: already computed by video_keypoints), or the
    motion file's; smoothed, saved, and given the --audio track when asked."""
    from .pipeline import DrivingKeypoints

    args = job.args
    if job.motion is not None:
        from .motion_file import check_motion_model

        check_motion_model(job.motion, model, f"--driving_motion {args.driving_motion}")
        kp = job.motion
    else:  # a copy: the read keypoints may be shared by other jobs, and get this job's audio below
        read = read if read is not None else video_keypoints(job, model, detector, bars)
        kp = DrivingKeypoints(read.keypoints, read.fps, job.driving.audio, read.name, read.detector)
    kp = kp.smoothed(args.smooth)
    if args.save_motion:  # the motion this run uses (smoothed when asked): the file reproduces it
        from .motion_file import save_motion

        saved = save_motion(args.save_motion, kp, overwrite=args.overwrite)
        bars.note(f"motion saved: {saved} ({len(kp)} frames, {saved.stat().st_size} bytes)")
    if job.audio is not None:
        kp.audio = job.audio
    _check_best_frame(job.args, len(kp))  # a video's frame count can be an estimate until it is read
    return kp


def run(args: argparse.Namespace) -> Summary:
    """Do the whole job for parsed arguments; raises FOMError subclasses for bad input."""
    bars = _Bars(args.quiet)
    started = time.perf_counter()
    job = Job.from_args(args)
    model, detector, restorer = load_networks(job)
    return render(job, model, detector, restorer, bars, started)


def load_networks(job: Job):
    """(model, face detector or None, face restorer or None): what a job needs loaded, slow to load."""
    return load_job_model(job), load_detector(job), load_restorer(job)


def load_restorer(job: Job):
    """The --restore_model face restorer (None without the flag)."""
    if not job.args.restore_model:
        return None
    from .restore import FaceRestorer, load_restore_model

    return FaceRestorer(load_restore_model(job.args.restore_model, job.device), device=job.device)


def load_job_model(job: Job):
    """The animation model the job's flags name (--weight_path or the known release), on its device."""
    from . import load_model

    args = job.args
    weights_path = resolve_weights(args, progress=not args.quiet)
    return load_model(weights_path, device=job.device, precision=args.precision, warp_border=args.warp_border,
                      image_size=args.image_size)


def render(job: Job, model, detector, restorer, bars: _Bars, started: float, read=None) -> Summary:
    """Animate a checked job with loaded networks (``read``: its driving video's keypoints when already
    computed) and write its video; a batch calls this for each job with networks loaded once."""
    from . import faces as F
    from . import pipeline as P

    args = job.args
    boxes, scores = _pick_faces(job, detector, bars)
    records = F.make_faces(job.image.shape[:2], boxes, scores, crop_mode=args.crop_mode, size=model.image_size)
    crops = F.crop_faces(job.image, records)
    kp = _driving_motion(job, model, detector, bars, read)

    # Pass 2: every face in lockstep, batch by batch, pasted and encoded as it comes.
    animation = P.FaceAnimation(model, crops, kp, job.animation, batch_size=args.batch_size)
    pasted = P.PastedFrames(job.image, records, animation, job.paste_for(len(records)), mask=job.mask,
                            restore=restorer, quantize=job.seed_exact)
    if pasted.covered:
        bars.note(f"mask: face(s) {', '.join(str(i + 1) for i in pasted.covered)} pasted through the mask, "
                  "any other in its circle")
    bars.note(f"model: {model.image_size} px on {model.device}, precision {model.precision} "
              f"({model.precision_reason})")
    with bars.bar("generate", len(kp)) as bar:
        writer = P.write_video(pasted, job.output, overwrite=args.overwrite, progress=_tqdm_progress(bar))
    return Summary(len(records), writer.frames_written, time.perf_counter() - started, job.output,
                   writer.audio_mode)


def run_convert(argv: list[str]) -> int:
    args = build_convert_parser().parse_args(argv)
    from . import checkpoints

    src, dst = Path(args.input), Path(args.output)
    if not src.is_file():
        raise InputError(f"checkpoint not found: {src} (check the path)")
    if dst.exists() and not args.overwrite:
        raise InputError(f"output file already exists: {dst} (pass --overwrite to replace it)")
    if dst.suffix != ".safetensors":
        raise InputError(f"the output must be a .safetensors file, e.g. {dst.with_suffix('.safetensors')}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.partial.safetensors")
    try:
        checkpoints.convert(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    print(f"wrote {dst}")
    return 0


# ---------------------------------------------------------------------------------------------------
# entry point


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("fom_pipeline")
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR if quiet else logging.WARNING)
    root.propagate = False


def _on_sigterm(signum, frame):  # turn a polite kill into the same clean stop as Ctrl-C
    raise KeyboardInterrupt


def _one_line(err: BaseException) -> str:
    text = " ".join((err.worded("cli") if isinstance(err, FOMError) else str(err)).split())  # the CLI's advice
    return text or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Console entry: returns the exit status (0 ok, 1 error, 2 bad flags, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (e.g. called from a test runner thread)
        pass
    try:
        if argv and argv[0] == "convert":
            _setup_logging(False)
            return run_convert(argv[1:])
        args = parse_args(argv)
        _setup_logging(args.quiet)
        summary = run(args)
        print(summary.line(), flush=True)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopped cleanly, no output written", file=sys.stderr, flush=True)
        return 130
    except FOMError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr, flush=True)
        return 1
    except MemoryError:
        print("error: out of memory; lower --batch_size or use a shorter clip", file=sys.stderr, flush=True)
        return 1
    except OSError as err:  # disk full, permission denied while writing, ...
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        print(f"error: {err.strerror or _one_line(err)}{where}", file=sys.stderr, flush=True)
        return 1
    except RuntimeError as err:
        if "out of memory" in str(err).lower():
            print("error: out of GPU memory; lower --batch_size or use --precision fp16", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
