"""ComfyUI entry point of the FOM multi-face pack.

ComfyUI imports this file as the package ``custom_nodes/<folder>`` and calls ``comfy_entrypoint``.
Outside ComfyUI (pytest, the CLI, a plain ``import``) ``comfy_api`` is absent and this file does
nothing, so importing it never pulls in torch or ComfyUI.
"""

import importlib.util
import os
import sys

_PACK_DIR = os.path.dirname(os.path.abspath(__file__))

if importlib.util.find_spec("comfy_api") is not None and __package__:
    # The engine is imported as the top-level package `fom_pipeline`, as the CLI does.
    if _PACK_DIR not in sys.path:
        sys.path.insert(0, _PACK_DIR)
    from .nodes import comfy_entrypoint  # noqa: F401  (ComfyUI looks this name up)
