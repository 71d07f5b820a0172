"""Test-only ComfyUI extension (never shipped): GET /fom_test/loaded_models lists ComfyUI's
``comfy.model_management.current_loaded_models`` as JSON, so a host test can see what ComfyUI's
model management holds. test_comfyui_model_management.py copies it into its own server's
custom_nodes/ as ``fom_test_probe/__init__.py``."""

import comfy.model_management as mm
from aiohttp import web
from server import PromptServer

NODE_CLASS_MAPPINGS: dict = {}  # a custom node package without nodes: only the route


@PromptServer.instance.routes.get("/fom_test/loaded_models")
async def loaded_models(request):
    out = []
    for loaded in list(mm.current_loaded_models):
        patcher = loaded.model
        if patcher is None:
            continue
        out.append({"name": type(patcher.model).__name__, "patcher": type(patcher).__name__,
                    "size": int(patcher.model_size()), "loaded_size": int(patcher.loaded_size()),
                    "device": str(loaded.device), "module": type(patcher.model).__module__})
    return web.json_response(out)
