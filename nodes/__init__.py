"""The pack's ComfyUI nodes (V3 schema, pinned to comfy_api.v0_0_2), one file per pipeline stage.

Only imported inside ComfyUI (see the root ``__init__.py``). Node ids are stable: saved workflows use them.
Importing changes nothing in ComfyUI: the model folders and the memory hooks are set up by
``FOMExtension.on_load``.
"""

from __future__ import annotations

from comfy_api.v0_0_2 import ComfyExtension, io

from .common import register_model_folders
from .faces import FOMCropDrivingVideo, FOMDetectFaces, FOMFacesFromBoxes, FOMSelectFaces
from .loaders import FOMLoadFaceDetector, FOMLoadModel
from .memory_hooks import install_memory_hooks
from .motion import (
    FOMAnimationToImages,
    FOMAnimationToVideo,
    FOMExtractKeypoints,
    FOMTransferMotion,
)
from .motion_files import FOMLoadMotion, FOMSaveMotion
from .paste import FOMPasteFaces
from .preview import FOMDrawKeypoints

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
    """The pack for ComfyUI: sets itself up in ``on_load`` and lists its nodes."""

    loaded = False

    async def on_load(self) -> None:
        """Register the model folders (models/fom, models/face_detection) and make ComfyUI's memory
        management release the pack's models. Both steps may run again harmlessly."""
        register_model_folders()
        install_memory_hooks()
        self.loaded = True

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        if not self.loaded:  # ComfyUI 0.3.75 never calls on_load (0.33 calls it before this)
            await self.on_load()
        return list(NODES)


async def comfy_entrypoint() -> FOMExtension:
    return FOMExtension()
