"""The animation command's run: load what the job needs, call the engine's streaming steps
(fom_pipeline.pipeline, the same the ComfyUI nodes run), show progress, sum up.

Pass 1 reads the driving video chunk by chunk (through its fixed face window when asked) and keeps only
its keypoints; pass 2 drives every face batch by batch, pastes the batch into the photo and hands it to
the encoder. Memory therefore does not grow with the video's length.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsMissingError
from ..faces.select import SCORE_THRESHOLD
from .job import Job


class Bars:
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


def _tqdm_progress(bar) -> Callable[[int, int], None]:
    """An engine ``progress(done, total)`` that moves a tqdm bar."""

    def progress(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return progress


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


def resolve_weights(args: argparse.Namespace, progress: bool) -> Path:
    """--weight_path, else the release PaddleGAN's demo uses from the models folder (converted or not),
    else downloaded."""
    from .. import weights

    if args.weight_path:
        path = Path(args.weight_path).expanduser()
        if not path.is_file():
            raise InputError(f"weights not found: {path} (check --weight_path)")
        if not os.access(path, os.R_OK):
            raise InputError(f"weights are not readable: {path} (check its permissions)")
        return path
    key = weights.release_for(args.mobile_net, args.image_size)
    found = weights.find_release(key)
    if found is not None:
        return found
    try:  # a download is checked to read as a checkpoint before it is moved into place
        return weights.ensure_weights(key, progress=progress)
    except WeightsMissingError as err:
        raise WeightsMissingError(f"{str(err).rstrip('.')}, or pass --weight_path FILE") from None


def _pick_faces(job: Job, detector, bars: Bars) -> tuple[list, list | None]:
    """Boxes (and scores) to animate: typed by hand or detected; one face unless --multi_person."""
    from .. import faces as F

    multi = job.args.multi_person
    if job.boxes is not None:
        if len(job.boxes) > 1 and not multi:
            bars.note(f"note: {len(job.boxes)} boxes given without --multi_person; animating only the first")
            return job.boxes[:1], None
        return job.boxes, None
    # Every face scoring SCORE_THRESHOLD or more, left to right; without --multi_person the largest one
    # (what PaddleGAN's demo means; see faces.select_faces).
    where = "first frame of the source video" if job.source is not None else "source image"
    with bars.bar("detect faces", 1, unit="image") as bar:
        try:
            found = F.detect_faces(detector, job.image.astype(np.float32) / 255.0, threshold=SCORE_THRESHOLD,
                                   max_faces=0 if multi else 1, order="left_to_right")
        except F.FaceNotFoundError:
            raise F.FaceNotFoundError(
                f"no face found in the {where} (detector score {SCORE_THRESHOLD:g} or more); give the faces by hand "
                'with --faces "x1,y1,x2,y2;x1,y1,x2,y2" (pixels)'
            ) from None
        bar.update(1)
    return [box for box, _ in found], [score for _, score in found]


def load_detector(job: Job):
    """The face detector, when faces are detected or the driving video is cropped (else None)."""
    from .. import faces as F

    args = job.args
    if job.boxes is not None and not args.crop_driving:
        return None
    try:
        return F.load_face_detector(backend=args.face_detector, device=job.device)
    except WeightsMissingError as err:
        hint = "" if args.crop_driving else "; or give the faces by hand with --faces x1,y1,x2,y2"
        raise WeightsMissingError(f"{str(err).rstrip('.')}{hint}") from None


def video_keypoints(job: Job, model, detector, bars: Bars):
    """The driving video's keypoints, as read (through its fixed face window when asked): what
    depends only on the video, its cut and the model, so a batch computes it once per driver."""
    from .. import pipeline as P

    driving = job.driving
    if job.args.crop_driving:
        with bars.bar("detect driving face", driving.frame_count) as bar:
            window = P.find_driving_window(detector, driving, progress=_tqdm_progress(bar))
        driving = P.CroppedFrames(driving, window, model.image_size)
    with bars.bar("keypoints", driving.frame_count) as bar:
        return P.driving_keypoints(model, driving, batch_size=max(job.args.batch_size, 8),
                                   progress=_tqdm_progress(bar))


def _driving_motion(job: Job, model, detector, bars: Bars, read=None):
    """Pass 1: the driving video's keypoints (``read``: already computed by video_keypoints), or the
    motion file's; smoothed, saved, and given the --audio track when asked."""
    from ..pipeline import DrivingKeypoints

    args = job.args
    if job.motion is not None:
        from ..motion_file import check_motion_model

        check_motion_model(job.motion, model, f"--driving_motion {args.driving_motion}")
        kp = job.motion
    else:  # a copy: the read keypoints may be shared by other jobs, and get this job's audio below
        read = read if read is not None else video_keypoints(job, model, detector, bars)
        kp = DrivingKeypoints(read.keypoints, read.fps, job.driving.audio, read.name, read.detector)
    kp = kp.smoothed(args.smooth)
    if args.save_motion:  # the motion this run uses (smoothed when asked): the file reproduces it
        from ..motion_file import save_motion

        saved = save_motion(args.save_motion, kp, overwrite=args.overwrite)
        bars.note(f"motion saved: {saved} ({len(kp)} frames, {saved.stat().st_size} bytes)")
    if job.audio is not None:
        kp.audio = job.audio
    return kp


def _video_paste(job: Job, model, detector, boxes, scores, kp, bars: Bars, paste, quantize, restorer):
    """Faces of a --source_video: tracked from its first frame (a pass that keeps a box per face and
    frame), then each animated from its own source frame and pasted onto it."""
    from .. import pipeline as P
    from ..faces.track import track_faces
    from ..video_source import VideoFaceAnimation
    from .job import sound_choice

    args = job.args
    with bars.bar("track faces", job.source.frame_count) as bar:
        tracks = track_faces(job.source, boxes, detector=detector, scores=scores, crop_mode=args.crop_mode,
                             size=model.image_size, progress=_tqdm_progress(bar))
    lost = int((~tracks.present).sum())
    if lost:
        bars.note(f"tracking: {lost} face-frame(s) where a face is out of view or after a cut are left as the source")
    sound = sound_choice(args)
    animation = VideoFaceAnimation(model, job.source, tracks, kp, job.animation, batch_size=args.batch_size,
                                   audio="driving" if sound == "file" else sound)  # a FILE rides on the motion
    return P.PastedFrames(job.source, tracks, animation, paste, mask=job.mask, restore=restorer, quantize=quantize)


def run(args: argparse.Namespace) -> Summary:
    """Do the whole job for parsed arguments; raises FOMError subclasses for bad input."""
    bars = Bars(args.quiet)
    started = time.perf_counter()
    job = Job.from_args(args)
    return render(job, load_job_model(job), load_detector(job), load_restorer(job), bars, started)


def load_restorer(job: Job):
    """The --restore_model face restorer (None without the flag)."""
    if not job.args.restore_model:
        return None
    from ..restore import FaceRestorer, load_restore_model

    return FaceRestorer(load_restore_model(job.args.restore_model, job.device), device=job.device)


def load_job_model(job: Job):
    """The animation model the job's flags name (--weight_path or the known release), on its device."""
    from .. import load_model

    args = job.args
    weights_path = resolve_weights(args, progress=not args.quiet)
    return load_model(weights_path, device=job.device, precision=args.precision, warp_border=args.warp_border,
                      image_size=args.image_size)


def render(job: Job, model, detector, restorer, bars: Bars, started: float, read=None) -> Summary:
    """Animate a checked job with loaded networks (``read``: its driving video's keypoints when already
    computed) and write its video; a batch calls this for each job with networks loaded once."""
    from .. import faces as F
    from .. import pipeline as P

    args = job.args
    boxes, scores = _pick_faces(job, detector, bars)
    records = F.make_faces(job.image.shape[:2], boxes, scores, crop_mode=args.crop_mode, size=model.image_size)
    crops = F.crop_faces(job.image, records)
    kp = _driving_motion(job, model, detector, bars, read)

    # Pass 2: every face in lockstep, batch by batch, pasted and encoded as it comes.
    paste, quantize = job.paste_for(len(records))
    if job.source is None:
        animation = P.FaceAnimation(model, crops, kp, job.animation, batch_size=args.batch_size)
        pasted = P.PastedFrames(job.image, records, animation, paste, mask=job.mask, restore=restorer,
                                quantize=quantize)
    else:  # faces followed through the source video, each animated from its own frame
        pasted = _video_paste(job, model, detector, boxes, scores, kp, bars, paste, quantize, restorer)
    if pasted.covered:
        bars.note(f"mask: face(s) {', '.join(str(i + 1) for i in pasted.covered)} pasted through the mask, "
                  "any other in its circle")
    bars.note(f"model: {model.image_size} px on {model.device}, precision {model.precision} "
              f"({model.precision_reason})")
    with bars.bar("generate", pasted.frame_count) as bar:
        writer = P.write_video(pasted, job.output, overwrite=args.overwrite, progress=_tqdm_progress(bar))
    return Summary(len(records), writer.frames_written, time.perf_counter() - started, job.output,
                   writer.audio_mode)
