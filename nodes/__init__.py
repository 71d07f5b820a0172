"""The pack's ComfyUI nodes (V3 schema, pinned to comfy_api.v0_0_2), one file per pipeline stage.

Only imported inside ComfyUI (see the root ``__init__.py``). Node ids are stable: saved workflows use them.
"""

from __future__ import annotations

from comfy_api.v0_0_2 import ComfyExtension, io

from .common import register_model_folders

register_model_folders()

from .faces import FOMCropDrivingVideo, FOMDetectFaces, FOMFacesFromBoxes, FOMSelectFaces  # noqa: E402
from .loaders import FOMLoadFaceDetector, FOMLoadModel  # noqa: E402
from .motion import (  # noqa: E402
    FOMAnimationToImages,
    FOMAnimationToVideo,
    FOMExtractKeypoints,
    FOMTransferMotion,
)
from .motion_files import FOMLoadMotion, FOMSaveMotion  # noqa: E402
from .paste import FOMPasteFaces  # noqa: E402
from .preview import FOMDrawKeypoints  # noqa: E402

NODES: list[type[io.ComfyNode]] = [
    FOMLoadModel,
    FOMLoadFaceDetector,
    FOMDetectFaces,
    FOMFacesFromBoxes,
    FOMSelectFaces,
    FOMCropDrivingVideo,
    FOMExtractKeypoints,
    FOMTransferMotion,
    FOMAnimationToImages,
    FOMAnimationToVideo,
    FOMPasteFaces,
    FOMDrawKeypoints,
    FOMSaveMotion,
    FOMLoadMotion,
]


class FOMExtension(ComfyExtension):
    """Lists the pack's nodes for ComfyUI."""

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> FOMExtension:
    return FOMExtension()
