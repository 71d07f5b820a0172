"""The command line's flags: the parsers, each number flag read by one factory and checked once."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..errors import InputError
from ..options import PasteOptions, check_ratio, frame_rate_problem


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (`error: ...`) instead of usage + message."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def number_flag(convert: Callable[[str], float], not_a_number: str,
                check: Callable[[float, str], float] | None = None) -> Callable[[str], float]:
    """An argparse type: ``convert`` the text (``"{not_a_number}, got 'x'"`` when it fails), then
    ``check(value, text)``, which returns the value or raises InputError (shown in the CLI's words)."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{not_a_number}, got {text!r}") from None
        if check is None:
            return value
        try:
            return check(value, text)
        except InputError as err:
            raise argparse.ArgumentTypeError(err.worded("cli")) from None

    return parse


def _at_least(minimum: int) -> Callable[[int, str], int]:
    def check(value: int, text: str) -> int:
        if value < minimum:
            raise InputError(f"must be {minimum} or more, got {value}")
        return value

    return check


def _seconds(value: float, text: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise InputError(f"must be 0 or more seconds, got {text}")
    return value


def _frame_rate(value: float, text: str) -> float:
    problem = frame_rate_problem(text)
    if problem:
        raise InputError(problem)
    return value


_ratio = number_flag(float, "ratio must be a number", lambda value, text: check_ratio(value))
positive_int = number_flag(int, "expected a whole number", _at_least(1))
non_negative_int = number_flag(int, "expected a whole number", _at_least(0))
_seconds_flag = number_flag(float, "expected seconds", _seconds)
_fps_flag = number_flag(float, "expected frames per second", _frame_rate)
_feather = number_flag(lambda text: float(text.strip().removesuffix("px")), "expected pixels",
                       lambda value, text: PasteOptions(feather=value).feather)


def build_parser() -> argparse.ArgumentParser:
    """The animation command's flags: PaddleGAN's demo's (same names, meanings, defaults) and ours."""
    p = OneLineParser(
        prog="fom-animate",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=30, width=120),
        description="Animate the faces of a photo, or of every frame of a video, with a driving video (First "
        "Order Motion Model). "
        "Also: `fom-animate convert IN OUT.safetensors` converts a checkpoint.",
    )
    demo = p.add_argument_group("the flags of PaddleGAN's demo (first-order-demo.py)")
    demo.add_argument("--source_image", default=None, help="photo whose faces are animated (or give --source_video)")
    demo.add_argument("--driving_video", default=None,
                      help="video whose motion drives the faces (or give --driving_motion instead)")
    demo.add_argument("--output", default="output", help="output folder (default: output)")
    demo.add_argument("--filename", default="result.mp4", help="output file name in that folder (default: result.mp4)")
    demo.add_argument("--relative", action="store_true", help="move keypoints relative to the first frame (recommended)")
    demo.add_argument("--adapt_scale", action="store_true", help="scale the motion to the source face's keypoint spread")
    demo.add_argument("--ratio", type=_ratio, default=0.4,
                      help="paste circle radius as a fraction of the crop height, 0.1-1.0 (default: 0.4)")
    demo.add_argument("--multi_person", action="store_true",
                      help="animate every face found; without it only one face is animated, as in PaddleGAN's demo")
    demo.add_argument("--find_best_frame", action="store_true",
                      help="start from the driving frame that best matches the source face's pose")
    demo.add_argument("--best_frame", type=non_negative_int, default=None,
                      help="use driving frame N (of the clip used) as the reference frame")
    demo.add_argument("--image_size", type=positive_int, default=None,
                      help="crop size the model runs at, the size it was trained at (default: stored in the "
                           "file or named in it, e.g. vox-cpk-512, else 256); 512 picks the 512 release when "
                           "downloading")
    demo.add_argument("--batch_size", type=positive_int, default=1,
                      help="frames generated per network call (default: 1, as PaddleGAN's demo; raise it on a GPU)")
    demo.add_argument("--weight_path", default=None,
                      help="checkpoint (.pdparams, .pth.tar, .safetensors); default: models/fom/ or download")
    demo.add_argument("--face_detector", default="sfd", help="face detector backend (default: sfd, as PaddleGAN's demo)")
    demo.add_argument("--cpu", action="store_true", help="run on the CPU (same as --device cpu)")
    demo.add_argument("--mobile_net", action="store_true", help="use PaddleGAN's mobile model when downloading weights")

    ours = p.add_argument_group("our additions")
    ours.add_argument("--source_video", default=None, metavar="FILE",
                      help="a video whose faces are animated instead of a photo's: faces found in (or --faces given "
                           "for) its first frame are followed through it, each output frame is made from its own "
                           "source frame, and the result keeps the source's frame rate, timestamps and sound "
                           "(see --audio); it ends with the shorter of the two clips")
    ours.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    ours.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                      help="network precision; auto: bf16 on CPUs with native bf16 (AVX-512 BF16 / AMX) and "
                           "GPUs that have it, else fp32 (fp16 on older GPUs) (default: auto)")
    ours.add_argument("--faces", default=None, metavar="BOXES",
                      help='face boxes by hand "x1,y1,x2,y2;..." in source-image pixels (skips the detector); '
                           "with --source_video, in its first frame")
    ours.add_argument("--crop_mode", choices=("square", "paddlegan"), default="square",
                      help="square crops around each face (default) or the paddlegan window of PaddleGAN's demo")
    ours.add_argument("--feather", type=_feather, default=None,
                      help="soft paste edge in pixels; 0 = PaddleGAN's demo's hard edge (default: 10%% of the radius)")
    ours.add_argument("--color_match", nargs="?", const="lab", default=None, choices=("lab", "rgb"),
                      help="match each pasted face's colours to the photo (lab by default, or rgb)")
    ours.add_argument("--crop_driving", action="store_true",
                      help="crop the driving video to a fixed window around its face (for uncropped videos)")
    ours.add_argument("--fps", type=_fps_flag, default=None,
                      help="frame rate of the result (default: the driving video's, as a player shows it; with "
                           "--source_video the source's); frames are taken at their real times, so variable-rate "
                           "clips play in real time")
    ours.add_argument("--max_frames", type=positive_int, default=None, help="use at most N driving frames")
    ours.add_argument("--start", type=_seconds_flag, default=0.0, help="skip this many seconds of the driving video")
    ours.add_argument("--duration", type=_seconds_flag, default=None,
                      help="use this many seconds of the driving video")
    ours.add_argument("--no_audio", action="store_true", help="no sound in the result (the same as --audio none)")
    ours.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    ours.add_argument("--warp_border", choices=("auto", "paddlegan", "plain"), default="auto",
                      help="how warping treats the crop border (default: auto, from the checkpoint)")
    ours.add_argument("--mask", default=None, metavar="FILE",
                      help="grayscale image the photo's size: white = animated face, black = photo (grey blends); "
                           "replaces the circle of each face it covers, feathered like the circle (with "
                           "--source_video: the video's size, used for every frame)")
    ours.add_argument("--restore_model", default=None, metavar="FILE",
                      help="face restoration model (GFPGAN, RestoreFormer, ...; .safetensors/.pth) run on every "
                           "animated face before pasting; needs `pip install spandrel`")
    ours.add_argument("--quiet", action="store_true", help="no progress bars or notes (errors and summary only)")

    motion = p.add_argument_group("motion: smoothing and motion files")
    motion.add_argument("--smooth", type=non_negative_int, default=0, metavar="N",
                        help="smooth the driving keypoints over about N frames, without delaying them "
                             "(0 = off, PaddleGAN's demo's behaviour; 3-8 calms jitter)")
    motion.add_argument("--save_motion", default=None, metavar="FILE",
                        help="also save the driving motion this run uses (keypoints after --smooth, fps, clip name) "
                             "to FILE.safetensors; --driving_motion FILE gives the same animation again")
    motion.add_argument("--driving_motion", default=None, metavar="FILE",
                        help="drive the faces with a saved motion file instead of --driving_video (same model)")
    motion.add_argument("--audio", default=None, metavar="source|driving|none|FILE",
                        help="the result's sound: source (the --source_video's, its default), driving (the driving "
                             "video's, a photo's default), none, or FILE (any file with sound, from --start); "
                             "write ./source for a file of that name")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The animation command's flags, with the checks that involve more than one flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.source_image and not args.source_video:
        parser.error("the following arguments are required: --source_image (or --source_video FILE)")
    if args.source_image and args.source_video:
        parser.error("give --source_image or --source_video, not both")
    if args.audio == "source" and not args.source_video:
        parser.error("--audio source takes the sound of --source_video; a photo has none (use driving, none or FILE)")
    if not args.driving_video and not args.driving_motion:
        parser.error("the following arguments are required: --driving_video (or --driving_motion FILE)")
    if args.driving_video and args.driving_motion:
        parser.error("give --driving_video or --driving_motion, not both")
    if args.driving_motion and args.crop_driving:
        parser.error("--crop_driving needs --driving_video (a motion file's keypoints are already of the face)")
    if args.audio not in (None, "none") and args.no_audio:
        parser.error("--audio and --no_audio contradict each other; give one")
    if args.fps and args.driving_motion and not args.source_video:
        parser.error("--fps re-times --driving_video; a motion file keeps the rate it was saved with")
    return args


def build_convert_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="fom-animate convert",
                description="Convert a checkpoint (.pth.tar, .pdparams, .safetensors) to our .safetensors.")
    p.add_argument("input", help="checkpoint to read")
    p.add_argument("output", help="the .safetensors file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p
