"""The pack's custom ComfyUI socket types and the plain-data values that flow through them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from comfy_api.v0_0_2 import io

from fom_pipeline.arrays import as_tensor

FOMModelType = io.Custom("FOM_MODEL")  # a Loaded handle of a fom_pipeline.FOMModel
FOMFaceDetectorType = io.Custom("FOM_FACE_DETECTOR")  # a Loaded handle of a fom_pipeline.faces.FaceDetector
FOMFacesType = io.Custom("FOM_FACES")  # a FaceSet
FOMKeypointsType = io.Custom("FOM_KEYPOINTS")  # a fom_pipeline.pipeline.DrivingKeypoints
FOMAnimationType = io.Custom("FOM_ANIMATION")  # a lazy fom_pipeline.pipeline.FaceAnimation (or FramesAnimation)


class Loaded:
    """A handle to a model the pack loads on demand.

    ComfyUI's output cache keeps this small object, not the weights: the pack's own cache holds the
    networks (a ``managed_models.ManagedModel``: the engine model and its ComfyUI ModelPatcher) and
    can drop them when ComfyUI frees memory; ``get()`` then loads them again. Nodes and lazy videos
    call ``get()`` only when they compute: it loads the weights through ComfyUI's model management.
    """

    def __init__(self, key, load, cache, info: dict | None = None):
        self.key = key
        self._load = load
        self._cache = cache
        self.info = dict(info or {})
        cache.hold(key, self)  # where ComfyUI's output cache rules, the model lives as long as its handles

    def get(self):
        return self._cache.get_or_load(self.key, self._load).ready()

    @property
    def patcher(self):
        """The loaded model's ModelPatcher, None while it is not loaded (never loads): ComfyUI 0.33
        counts an output with a ``patcher`` as a model (its RAM cache, its per-prompt model tracker)."""
        entry = self._cache.peek(self.key)
        return None if entry is None else entry.patcher


@dataclass
class FaceSet:
    """Faces of one picture with their crops, so selecting faces keeps records and crops together."""

    records: list  # list[fom_pipeline.faces.FaceRecord]
    crops: torch.Tensor  # float32 [N, S, S, 3] in [0, 1], same order as records
    image: np.ndarray | None = None  # the picture the faces are in, float32 [H, W, 3] (a video's first frame)
    auto_size: bool = False  # crops follow the model: made again at its size when animated
    video: object = None  # a source video's fom_pipeline.streams.FrameSource, when the faces are in one ...
    tracks: object = None  # ... and where they are in each of its frames (fom_pipeline.faces.track.FaceTracks)

    def select(self, keep: list[int]) -> FaceSet:
        """Some of the faces (0-based), in the order given, with their crops and tracks."""
        tracks = None if self.tracks is None else self.tracks.select(keep)
        return FaceSet([self.records[i] for i in keep], self.crops[keep], self.image, self.auto_size, self.video,
                       tracks)

    def crops_for(self, size: int) -> torch.Tensor:
        """The crops at ``size`` px: cut again from the picture when the size is automatic."""
        if not self.auto_size or self.image is None or self.crops.shape[1] == size:
            return self.crops
        from dataclasses import replace

        from fom_pipeline.faces import crop_faces

        return as_tensor(crop_faces(self.image, [replace(r, size=int(size)) for r in self.records]))

    def __len__(self) -> int:
        return len(self.records)
