"""The streaming pipeline both front ends run: driving video -> keypoints -> animated faces -> pasted
frames -> encoded video, one chunk at a time.

Each step is one function or one lazy :class:`~fom_pipeline.streams.FrameSource`:

- :func:`find_driving_window` and :class:`CroppedFrames`: the optional fixed face window of an
  uncropped driving video (detections on sampled frames, the node's rules).
- :func:`driving_keypoints`: keypoints of every driving frame, once per video, chunk by chunk.
- :class:`FaceAnimation`: every face crop driven by those keypoints, all faces in lockstep, batch
  by batch; each face's source features are encoded once per pass.
- :class:`PastedFrames`: the animated faces pasted into the photo (or into frames of an earlier
  paste, to chain face groups with different drivers), a batch at a time.
- :func:`write_video`: any source encoded to a file with its audio, atomically.

Nothing here holds every frame of a video: what stays in memory is per face (its crop) and per
video (keypoints, a few hundred bytes a frame). ``progress(done, total)`` callbacks may raise to
stop the work (Ctrl-C in the command line, Cancel in ComfyUI).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from .arrays import as_numpy, as_tensor
from .errors import InputError
from .faces import crop_driving_frames, detect_faces_batch, driving_window, paste_faces
from .faces.crops import DEFAULT_DRIVING_SCALE, FaceRecord, cap_window
from .faces.paste import as_mask, mask_covers, paste_tracked
from .faces.select import SCORE_THRESHOLD
from .faces.track import FaceTracks
from .images import as_rgb_float, check_layout
from .keypoints import Keypoints, detector_fingerprint, smooth_keypoints
from .options import AnimationOptions, PasteOptions
from .streams import AudioTrack, FrameSource, as_float, as_uint8, clip_name, fit_frames, rate_picks, regroup

log = logging.getLogger("fom_pipeline")
Progress = Callable[[int, int], None]
ModelRef = Callable[[], object]  # returns a FOMModel: lets a caller drop and reload the networks
WINDOW_SAMPLES_PER_SECOND = 5
WINDOW_MAX_SAMPLES = 300
DETECT_BATCH = 4


def model_of(model):
    return model() if callable(model) and not hasattr(model, "extract_keypoints") else model


# ---------------------------------------------------------------------------------------------------
# driving video


def detection_stride(source: FrameSource, every: int | None = None) -> int:
    """Which frames the window detector looks at: every n-th; auto is about 5 a second, 300 at most."""
    if every:
        return max(1, int(every))
    per_second = max(1, int(round((source.fps or 25.0) / WINDOW_SAMPLES_PER_SECOND)))
    return max(per_second, math.ceil(max(1, source.frame_count) / WINDOW_MAX_SAMPLES))


def find_driving_window(detector, source: FrameSource, scale: float = DEFAULT_DRIVING_SCALE,
                        every: int | None = None, threshold: float = SCORE_THRESHOLD,
                        progress: Progress | None = None) -> tuple[int, int, int, int]:
    """One fixed square window around the driving video's face for the whole clip.

    The detector runs on every ``every``-th frame; per frame the largest face scoring at least
    ``threshold`` counts; the window is the union of those boxes enlarged ``scale`` times (see
    :func:`fom_pipeline.faces.driving_window`). Frames are read a chunk at a time.
    """
    stride = detection_stride(source, every)
    boxes: list = []
    index = 0
    total = source.frame_count
    for chunk in source.chunks(32):
        picks = [i for i in range(len(chunk)) if (index + i) % stride == 0]
        for start in range(0, len(picks), DETECT_BATCH):
            sample = as_float(chunk[picks[start : start + DETECT_BATCH]])
            for faces in detect_faces_batch(detector, sample, threshold=threshold):
                boxes.append([box for box, _ in faces])
        index += len(chunk)
        if progress is not None:
            progress(min(index, total) if total else index, total or index)
    return driving_window(boxes, (source.height, source.width), scale)


class CroppedFrames(FrameSource):
    """The same ``window`` cut out of every frame of ``source`` and resized to ``size`` (uint8)."""

    def __init__(self, source: FrameSource, window: Sequence[int], size: int):
        self.source = source
        x1, y1, x2, y2 = (int(round(v)) for v in window)
        if x2 <= x1 or y2 <= y1:
            raise InputError(f"driving window {(x1, y1, x2, y2)} is empty: need x2 > x1 and y2 > y1")
        if x2 <= 0 or y2 <= 0 or x1 >= source.width or y1 >= source.height:
            raise InputError(f"driving window {(x1, y1, x2, y2)} lies outside the {source.width}x{source.height} "
                             "frames; windows are x1,y1,x2,y2 in frame pixels")
        self.window = cap_window((x1, y1, x2, y2), (source.height, source.width))
        self.size = int(size)
        self.width = self.height = self.size
        self.fps, self.frame_count, self.audio = source.fps, source.frame_count, source.audio

    def chunks(self, size: int = 16) -> Iterator[np.ndarray]:
        for chunk in self.source.chunks(size):  # uint8 out: an automatic window size can be large
            yield np.concatenate([as_uint8(crop_driving_frames(as_float(chunk[i : i + DETECT_BATCH]), self.window,
                                                               self.size))
                                  for i in range(0, len(chunk), DETECT_BATCH)])


class DrivingKeypoints:
    """Keypoints of every driving frame with the clip's timing and audio (what a driving video
    leaves once its frames are gone). ``name``: the clip's file name where known; ``detector``: the
    :func:`~fom_pipeline.keypoints.detector_fingerprint` of the model that made them."""

    def __init__(self, keypoints: Keypoints, fps: float = 25.0, audio: AudioTrack | None = None,
                 name: str = "", detector: torch.Tensor | None = None):
        self.keypoints = keypoints
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.audio = audio
        self.name = name
        self.detector = detector

    def __len__(self) -> int:
        return len(self.keypoints)

    def smoothed(self, frames: float) -> DrivingKeypoints:
        """The same clip with its keypoints smoothed over ``frames`` (0: this object, unchanged)."""
        if not frames:
            return self
        return DrivingKeypoints(smooth_keypoints(self.keypoints, frames), self.fps, self.audio, self.name,
                                self.detector)

    def at_rate(self, fps: float) -> DrivingKeypoints:
        """The same motion at ``fps`` frames a second, as long in seconds: output frame k takes the
        driving frame on screen in the middle of its interval (frames repeated or skipped, as
        :class:`~fom_pipeline.streams.Retimed` re-times frames). This object when the rate is the same."""
        if not fps or fps <= 0 or abs(float(fps) - self.fps) < 1e-9:
            return self
        picks = rate_picks(len(self), self.fps, float(fps))
        if not len(picks):
            picks = np.zeros(1, np.int64)
        keypoints = Keypoints(self.keypoints.value[picks], None if self.keypoints.jacobian is None else
                              self.keypoints.jacobian[picks])
        return DrivingKeypoints(keypoints, fps, self.audio, self.name, self.detector)


def driving_keypoints(model, source: FrameSource, batch_size: int = 32,
                      progress: Progress | None = None) -> DrivingKeypoints:
    """Keypoints of every frame of ``source``, read and computed a chunk at a time."""
    model = model_of(model)
    parts = []
    done = 0
    total = source.frame_count
    for chunk in source.chunks(max(8, int(batch_size))):
        parts.append(model.extract_keypoints(fit_frames(chunk, model.image_size), batch_size=batch_size))
        done += len(chunk)
        if progress is not None:
            progress(min(done, total) if total else done, total or done)
    if not parts:
        raise InputError("the driving video has no frames")

    return DrivingKeypoints(Keypoints.cat(parts), source.fps, source.audio, name=clip_name(source),
                            detector=detector_fingerprint(model))


# ---------------------------------------------------------------------------------------------------
# animation


class FaceAnimation:
    """Face crops [N,S,S,3] driven by ``driving`` keypoints, computed only when iterated.

    ``batches()`` yields float32 [N,b,S,S,3] (S = ``size``, the model's): every face's next
    ``batch_size`` frames, so the faces advance in lockstep and a paste can consume them batch by batch.
    ``model`` is a FOMModel or a function returning one (so a caller can drop and reload the networks).
    ``options``: how the motion moves the faces; or give its fields as keywords (``relative=False``).
    """

    def __init__(self, model, crops, driving: DrivingKeypoints, options: AnimationOptions | None = None, *,
                 batch_size: int = 8, size: int | None = None, **fields):
        if options is not None and fields:
            raise TypeError("give FaceAnimation either options or its fields, not both")
        options = options or AnimationOptions(**fields)
        crops = as_numpy(crops, np.float32)
        crops = as_rgb_float(crops[None] if crops.ndim == 3 else crops, "face crops", batched=True)
        if len(driving) == 0:
            raise InputError("the driving video has no frames (0 keypoint sets)")
        options.check_against(len(driving))
        self.model = model
        self.crops = crops
        self.driving = driving
        self.options = options
        self.batch_size = max(1, int(batch_size))
        self.fps, self.audio = driving.fps, driving.audio
        self.size = int(size or model_of(model).image_size)  # side of the frames it makes

    @property
    def faces(self) -> int:
        return len(self.crops)

    @property
    def frame_count(self) -> int:
        return len(self.driving)

    def batches(self, faces: Sequence[int] | None = None) -> Iterator[np.ndarray]:
        """float32 [n,b,S,S,3] batches of the faces numbered in ``faces`` (0-based; default all)."""
        model = model_of(self.model)
        picked = self.crops if faces is None else self.crops[list(faces)]
        streams = [model.animate_batches(as_tensor(crop), self.driving.keypoints, batch_size=self.batch_size,
                                         **self.options.as_kwargs())
                   for crop in picked]
        for per_face in zip(*streams, strict=True):
            yield np.stack([as_numpy(frames) for frames in per_face])

    def frames(self, progress: Progress | None = None) -> np.ndarray:
        """Every frame of every face, float32 [N,T,S,S,3] (holds the whole animation: short clips)."""
        out = None
        done = 0
        for batch in self.batches():
            if out is None:
                out = np.empty((self.faces, self.frame_count, *batch.shape[2:]), dtype=np.float32)
            out[:, done : done + batch.shape[1]] = batch
            done += batch.shape[1]
            if progress is not None:
                progress(done, self.frame_count)
        return out


class FramesAnimation:
    """Animated crops made elsewhere (e.g. restored between transfer and paste), with the timing and
    audio of the animation they replace: float [N,T,S,S,3] or face-major [N*T,S,S,3]."""

    def __init__(self, frames, faces: int, fps: float = 25.0, audio: AudioTrack | None = None,
                 batch_size: int = 8):
        frames = as_numpy(frames)
        if frames.ndim == 4:
            if faces <= 0 or len(frames) % faces:
                raise InputError(f"{len(frames)} animated crops do not split evenly into {faces} faces; "
                                 "give the crops of the same faces, face-major (all frames of face 1, then 2, ...)")
            frames = frames.reshape(faces, len(frames) // faces, *frames.shape[1:])
        if frames.ndim != 5 or frames.shape[0] != faces:
            raise InputError(f"animated crops have shape {tuple(frames.shape)}; expected [N,T,S,S,3], N = {faces}")
        check_layout(frames.shape[1:], "animated crops", batched=True)
        self.array = frames
        self.size = int(self.array.shape[2])
        self.fps, self.audio = fps, audio
        self.batch_size = max(1, int(batch_size))

    @property
    def faces(self) -> int:
        return self.array.shape[0]

    @property
    def frame_count(self) -> int:
        return self.array.shape[1]

    def batches(self, faces: Sequence[int] | None = None) -> Iterator[np.ndarray]:
        array = self.array if faces is None else self.array[list(faces)]
        for start in range(0, self.frame_count, self.batch_size):
            yield as_float(array[:, start : start + self.batch_size])

    def frames(self, progress: Progress | None = None) -> np.ndarray:
        return as_float(self.array)


class AnimatedFace(FrameSource):
    """One face of an animation as a clip of its crops (a portrait that is already a face crop)."""

    def __init__(self, animation, face: int = 0):
        if not 0 <= face < animation.faces:
            raise InputError(f"face {face + 1} is out of range; the animation has {animation.faces} faces")
        self.animation, self.face = animation, int(face)
        self.fps, self.audio, self.frame_count = animation.fps, animation.audio, animation.frame_count
        self.height = self.width = animation.size

    def chunks(self, size: int = 16) -> Iterator[np.ndarray]:
        for batch in self.animation.batches(faces=[self.face]):  # only this face is computed
            yield as_uint8(batch[0])


class PastedFrames(FrameSource):
    """Animated faces pasted into a photo [H,W,3] or into the frames of another source.

    ``faces``: the face records of a photo, or :class:`~fom_pipeline.faces.track.FaceTracks` of a
    source video (``base`` is then that video, or an earlier paste onto it: each face goes onto its
    own frame, and where a face is not seen the frame is left as it is).
    ``options``: how the faces are pasted (:class:`~fom_pipeline.options.PasteOptions`); or give its
    fields as keywords (``ratio=0.5``).
    ``quantize``: cast the animated faces to 8 bits (truncating) before pasting, as PaddleGAN's demo did.
    ``mask``: a picture-sized map [H,W] that replaces the circle of the faces it covers
    (:mod:`fom_pipeline.faces.paste`), or one per frame [T,H,W] for tracked faces; ``covered`` lists
    the faces it covers (0-based; in the first frame for tracked faces).
    ``restore``: a :class:`~fom_pipeline.restore.FaceRestorer` applied to each batch of animated
    crops before they are pasted.
    The result's frame rate comes from the base source when there is one, else the animation; its
    audio from the base source when it has audio, else the animation (tracked faces: the animation's,
    which chose the source's or the driver's).
    """

    def __init__(self, base, faces: Sequence[FaceRecord] | FaceTracks, animation, options: PasteOptions | None = None, *,
                 quantize: bool = False, mask=None, restore=None, **fields):
        if options is not None and fields:
            raise TypeError("give PastedFrames either options or its fields, not both")
        self.options = options or PasteOptions(**fields)  # a bad value fails here, before any network runs
        self.tracks = faces if isinstance(faces, FaceTracks) else None
        self.faces = faces.first_records() if self.tracks is not None else list(faces)
        if len(self.faces) != animation.faces:
            raise InputError(f"{animation.faces} animated faces but {len(self.faces)} face records; connect the "
                             "same faces that went into the motion transfer")
        if restore is not None:
            from .restore import RestoredAnimation

            animation = RestoredAnimation(animation, restore)
        self.animation = animation
        self.base = base
        self.quantize = quantize
        if self.tracks is not None and not isinstance(base, FrameSource):
            raise InputError("these faces were tracked through a video: paste them onto that video (or an earlier "
                             "paste onto it), not onto a picture")
        if isinstance(base, FrameSource):
            self.width, self.height, self.fps = base.width, base.height, base.fps
            self.audio = animation.audio if self.tracks is not None else base.audio or animation.audio
            self.frame_count = min(base.frame_count, animation.frame_count) if base.frame_count else \
                animation.frame_count
            self.photo = None
        else:
            photo = as_numpy(base)
            if photo.ndim == 4:
                photo = photo[0]
            self.photo = as_rgb_float(as_float(photo))  # checked, not copied
            self.height, self.width = self.photo.shape[:2]
            self.fps, self.audio, self.frame_count = animation.fps, animation.audio, animation.frame_count
        for i, face in enumerate(self.faces):  # a mismatch fails here, before any network runs
            if tuple(face.image_size) != (self.height, self.width):
                raise InputError(f"face {i + 1} belongs to a {face.image_size[1]}x{face.image_size[0]} picture but "
                                 f"the frames are {self.width}x{self.height}; detect the faces on this picture")
        self.covered: list[int] = []
        self.mask = None
        if mask is not None:
            self.mask = self._checked_mask(mask)
            first = self.mask[0] if self.mask.ndim == 3 else self.mask
            self.covered = [i for i, face in enumerate(self.faces) if mask_covers(face, first)]
            if not self.covered:
                log.warning("the paste mask covers none of the %d faces (it must be on in the middle of a face's "
                            "box); every face keeps its circle", len(self.faces))

    def _checked_mask(self, mask) -> np.ndarray:
        """[H,W], or [T,H,W] (one per frame, tracked faces only) as float in [0, 1]."""
        array = as_numpy(mask)
        if self.tracks is not None and array.ndim == 3 and len(array) > 1 and array.shape[-1] != 1:
            if len(array) < self.frame_count:
                raise InputError(f"the mask batch has {len(array)} masks for {self.frame_count} frames; give one "
                                 "mask, or one per frame of the source video")
            return np.stack([as_mask(m, (self.height, self.width)) for m in array[: self.frame_count]])
        return as_mask(array, (self.height, self.width))

    def chunks(self, size: int = 16) -> Iterator[np.ndarray]:
        batches = self.animation.batches()
        if self.photo is None:
            base_chunks = regroup(self.base.chunks(self.animation.batch_size), self.animation.batch_size)
        done = 0
        for animated in batches:
            if self.quantize:
                animated = np.floor(np.clip(animated, 0.0, 1.0) * 255.0) / 255.0
            if self.photo is not None:
                frames = self.photo
            else:
                base = next(base_chunks, None)
                if base is None:
                    return
                animated = animated[:, : len(base)]
                if self.tracks is not None:  # frame by frame: no float copy of a whole batch of frames
                    yield paste_tracked(base[: animated.shape[1]], self.tracks, done, animated, mask=self.mask,
                                        **self.options.as_kwargs())
                    done += animated.shape[1]
                    continue
                frames = as_float(base[: animated.shape[1]])
            yield as_uint8(paste_faces(frames, self.faces, animated, mask=self.mask, **self.options.as_kwargs()))


# ---------------------------------------------------------------------------------------------------
# output


def write_video(source: FrameSource, path: str | os.PathLike, *, overwrite: bool = False, audio: bool = True,
                progress: Progress | None = None, chunk: int = 8, **encoder):
    """Encode ``source`` to ``path`` (h264, with its audio track unless ``audio`` is False);
    ``encoder``: VideoWriter's encoder options (crf, preset, codec, bit_depth, color_space).

    Atomic: the file appears only when complete; an error or an exception raised by ``progress``
    (a cancel) leaves no file and any existing one untouched. Returns the finished VideoWriter
    (``frames_written``, ``audio_mode``).
    """
    from .video import VideoWriter

    track = source.audio if audio else None
    writer = VideoWriter(Path(path), source.fps, (source.width, source.height),
                         audio_source=track.path if track else None, audio_start=track.start if track else 0.0,
                         overwrite=overwrite, **encoder)
    total = source.frame_count
    with writer:
        for frames in source.chunks(chunk):
            writer.write(as_uint8(frames))
            if progress is not None:
                progress(writer.frames_written, max(total, writer.frames_written))
    return writer
