"""Faces in a source video: every tracked face animated from its own source frame, frame by frame.

The steps both front ends run for a video instead of a photo:

- :func:`open_source_video`: the source video as a stream, refusing a still picture or an empty file
  in one line; :func:`first_frame`: the picture the faces are found (or typed) in.
- :func:`fom_pipeline.faces.track.track_faces`: the faces followed through the clip (a pass that
  keeps a box per face and frame).
- :class:`VideoFaceAnimation`: each output frame generated from its own source frame: face ``i``
  of frame ``t`` is cut out of frame ``t`` with its steady window and driven by driving frame ``t``
  (the driving motion re-timed to the source's frame rate). With ``relative`` the face's own
  keypoints in frame ``t`` move by the driver's change since the reference frame, so the source's
  own head motion is kept; ``adapt_scale``'s ratio is worked out once per face (where it is first
  seen), so it does not tremble from frame to frame.
- :class:`~fom_pipeline.pipeline.PastedFrames` with the tracks as its faces: each face pasted onto
  its own frame, the rest of every frame the source's.

The result follows the source's frame rate and timestamps and ends with the shorter clip. Nothing
holds the video: the source is read a chunk at a time (once to track, once to animate, once to
paste), and what stays is per face and frame a box, per driving frame its keypoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from .errors import InputError
from .faces.crops import crop_window
from .faces.track import FaceTracks
from .keypoints import Keypoints, movement_scale
from .options import AnimationOptions
from .pipeline import DrivingKeypoints, model_of
from .streams import FrameSource, as_float, regroup

AUDIO_CHOICES = ("source", "driving", "none")


def open_source_video(path: str | os.PathLike, *, fps: float | None = None, audio: bool = True,
                      what: str = "source video"):
    """The source video as a :class:`~fom_pipeline.streams.VideoFile` (``fps``: re-timed to that rate).

    A missing, broken or empty file and a still picture are refused in one line naming the file.
    """
    from .streams import VideoFile
    from .video import is_still_picture, read_video_meta

    meta = read_video_meta(path, what=what)
    if is_still_picture(meta):
        raise InputError(f"{what} {meta.path} is a still picture, not a video",
                         python="give it as the source picture", cli="give it with --source_image",
                         node="load it with Load Image and connect that instead")
    clip = VideoFile(meta.path, audio=audio, meta=meta, fps=fps)
    if clip.frame_count <= 0:
        raise InputError(f"{what} has no frames: {meta.path} (give a video with at least one frame)")
    return clip


def pick_audio(choice: str, source_audio, driving_audio):
    """The sound a result from a source video keeps: the source's, the driver's, or none."""
    if choice not in AUDIO_CHOICES:
        raise InputError(f"audio {choice!r} is unknown; choose {', '.join(AUDIO_CHOICES)}")
    return {"source": source_audio, "driving": driving_audio, "none": None}[choice]


def first_frame(source: FrameSource) -> np.ndarray:
    """Frame 0 of a source as uint8 or float RGB [H,W,3] (what faces are detected or typed in)."""
    for chunk in source.chunks(1):
        if len(chunk):
            return np.ascontiguousarray(chunk[0])
    raise InputError("the source video has no frames (give a video with at least one frame)")


class _FaceReference:
    """What a face's motion is measured against, fixed where the face is first seen: the driving
    reference frame's keypoints and adapt_scale's ratio."""

    def __init__(self, initial: Keypoints, scale: float):
        self.initial, self.scale = initial, scale


class VideoFaceAnimation:
    """Faces tracked through ``source`` (a FrameSource) driven by ``driving``, computed only when
    iterated; the same interface as :class:`~fom_pipeline.pipeline.FaceAnimation` (``batches()``
    yields float32 [N,b,S,S,3], zeros where a face is not seen).

    ``tracks``: :func:`~fom_pipeline.faces.track.track_faces` of this source (its crop size is
    replaced by ``size``, the model's); ``options``: :class:`~fom_pipeline.options.AnimationOptions`
    (or its fields as keywords). ``reference_frame`` counts driving frames at the source's rate.
    ``audio``: the sound the result keeps, the source video's (default), the driving video's, or none.
    """

    def __init__(self, model, source: FrameSource, tracks: FaceTracks, driving: DrivingKeypoints,
                 options: AnimationOptions | None = None, *, batch_size: int = 8, size: int | None = None,
                 audio: str = "source", **fields):
        if options is not None and fields:
            raise TypeError("give VideoFaceAnimation either options or its fields, not both")
        options = options or AnimationOptions(**fields)
        if len(driving) == 0:
            raise InputError("the driving video has no frames (0 keypoint sets)")
        if tracks.frame_count < 1 or tracks.faces < 1:
            raise InputError("no faces tracked in the source video; give boxes for its first frame")
        if (source.height, source.width) != tuple(tracks.image_size):
            raise InputError(f"the faces were tracked in a {tracks.image_size[1]}x{tracks.image_size[0]} video but "
                             f"this source is {source.width}x{source.height}; track the faces in this video")
        self.model = model
        self.source = source
        self.size = int(size or model_of(model).image_size)
        self.tracks = tracks.resized(self.size)
        self.driving = driving.at_rate(source.fps)
        options.check_against(len(self.driving))
        self.options = options
        self.batch_size = max(1, int(batch_size))
        self.fps = source.fps
        self.audio = pick_audio(audio, source.audio, driving.audio)
        counts = [n for n in (source.frame_count, tracks.frame_count) if n > 0]
        self.length = min([len(self.driving), *counts])

    @property
    def faces(self) -> int:
        return self.tracks.faces

    @property
    def frame_count(self) -> int:
        return self.length

    def _reference(self, model, crop: np.ndarray) -> _FaceReference:
        """The driving reference frame and adapt_scale's ratio for a face, from its first crop."""
        kp_driving = self.driving.keypoints
        ref = self.options.reference_frame
        source_kp = model.extract_keypoints(crop[None]) if ref == "best" or self.options.adapt_scale else None
        initial = kp_driving[model.reference_index(ref, source_kp, kp_driving)]
        scale = movement_scale(source_kp, initial) if self.options.adapt_scale else 1.0
        return _FaceReference(initial, scale)

    def batches(self, faces: Sequence[int] | None = None) -> Iterator[np.ndarray]:
        """float32 [n,b,S,S,3] batches of the faces numbered in ``faces`` (0-based; default all)."""
        model = model_of(self.model)
        picked = list(range(self.faces)) if faces is None else list(faces)
        references: dict[int, _FaceReference] = {}
        kp = self.driving.keypoints
        tracks, size, done = self.tracks, self.size, 0
        for chunk in regroup(self.source.chunks(self.batch_size), self.batch_size):
            chunk = chunk[: self.length - done]
            if not len(chunk):
                return
            out = np.zeros((len(picked), len(chunk), size, size, 3), np.float32)
            for j, face in enumerate(picked):
                seen = [k for k in range(len(chunk)) if tracks.present[done + k, face]]
                if not seen:
                    continue
                crops = np.stack([as_float(crop_window(chunk[k], tuple(tracks.windows[done + k, face]), size,
                                                       tracks.mode)) for k in seen])
                if face not in references:
                    references[face] = self._reference(model, crops[0])
                ref = references[face]
                frames = model.animate_frames(crops, kp[[done + k for k in seen]], ref.initial,
                                              relative=self.options.relative,
                                              relative_jacobian=self.options.relative_jacobian, scale=ref.scale)
                out[j, seen] = frames.numpy()
            done += len(chunk)
            yield out
            if done >= self.length:
                return

    def frames(self, progress=None) -> np.ndarray:
        """Every frame of every face, float32 [N,T,S,S,3] (holds the whole animation: short clips)."""
        out = np.zeros((self.faces, self.frame_count, self.size, self.size, 3), np.float32)
        done = 0
        for batch in self.batches():
            out[:, done : done + batch.shape[1]] = batch
            done += batch.shape[1]
            if progress is not None:
                progress(done, self.frame_count)
        return out
