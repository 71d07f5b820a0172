"""The pack's custom ComfyUI socket types and the plain-data values that flow through them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from comfy_api.v0_0_2 import io

FOMModelType = io.Custom("FOM_MODEL")  # a fom_pipeline.FOMModel
FOMFaceDetectorType = io.Custom("FOM_FACE_DETECTOR")  # a fom_pipeline.faces.FaceDetector
FOMFacesType = io.Custom("FOM_FACES")  # a FaceSet
FOMKeypointsType = io.Custom("FOM_KEYPOINTS")  # a fom_pipeline.Keypoints


@dataclass
class FaceSet:
    """Faces of one picture with their crops, so selecting faces keeps records and crops together."""

    records: list  # list[fom_pipeline.faces.FaceRecord]
    crops: torch.Tensor  # float32 [N, S, S, 3] in [0, 1], same order as records

    def __len__(self) -> int:
        return len(self.records)
