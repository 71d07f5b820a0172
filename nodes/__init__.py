"""The pack's ComfyUI nodes (V3 schema, pinned to comfy_api.v0_0_2), one file per pipeline stage.

Only imported inside ComfyUI (see the root ``__init__.py``).
"""

from __future__ import annotations

from comfy_api.v0_0_2 import ComfyExtension, io

NODES: list[type[io.ComfyNode]] = []


class FOMExtension(ComfyExtension):
    """Lists the pack's nodes for ComfyUI."""

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> FOMExtension:
    return FOMExtension()
