"""The pack's networks under ComfyUI's model management, as ComfyUI's own loaders put theirs.

Each loaded model (the FOMM networks, the face detector) gets a ``ModelPatcher`` (0.33's
``CoreModelPatcher``, what its upscale and frame-interpolation loaders give plain torch networks)
sized by its parameters and buffers, and ``load_models_gpu`` loads it before each computation. So
ComfyUI lists it in ``current_loaded_models``, makes room for it on the GPU, offloads it when another
model needs the room (DynamicVRAM on 0.33) and unloads it with "unload models". The engine objects
stay ComfyUI-free; the patcher wraps their torch modules, which it moves in place.
"""

from __future__ import annotations

import torch

from .model_cache import device_type


class PackNetworks(torch.nn.Module):
    """The torch modules of one loaded model under one root: what a ModelPatcher moves and measures.
    Modules shared by several entries (the inference form reuses the trained form's heads) count once."""

    def __init__(self, modules: dict[str, torch.nn.Module], device: torch.device):
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)
        self.device = device  # where the weights are: ModelPatcher reads and updates it


class FOMNetworks(PackNetworks):
    """A FOMM model's generator and keypoint detector, trained and inference forms (the name ComfyUI logs)."""


class FaceDetectorNetwork(PackNetworks):
    """A face detector's network (S3FD or BlazeFace)."""


def network_bytes(module: torch.nn.Module) -> int:
    """The memory of every parameter and buffer, each tensor once: the size ComfyUI accounts for."""
    tensors = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def fom_modules(model) -> dict[str, torch.nn.Module]:
    """The networks a ``fom_pipeline.FOMModel`` runs and keeps."""
    return {"generator": model.generator, "kp_detector": model.kp_detector,
            "inference_generator": model.inference.generator, "inference_kp_detector": model.inference.kp_detector}


def detector_modules(detector) -> dict[str, torch.nn.Module]:
    """The network of a ``fom_pipeline.faces.FaceDetector`` (face-alignment's detector object holds it)."""
    return {"face_detector": detector.backend_detector.face_detector}


class ManagedModel:
    """A loaded engine model (FOMModel, FaceDetector) with the ModelPatcher ComfyUI manages it by."""

    def __init__(self, value, patcher):
        self.value = value
        self.patcher = patcher

    @property
    def device(self):
        return self.value.device

    def ready(self):
        """The engine model with its weights on its device: loaded through ComfyUI's model management,
        which first makes room (unloading or offloading other models) and accounts for ours."""
        import comfy.model_management as mm

        mm.load_models_gpu([self.patcher], force_full_load=True)  # plain torch layers: all or nothing
        return self.value

    def release(self) -> None:
        """Take the patcher out of ComfyUI's loaded models (its weights back on the offload device) when
        the pack's cache forgets it, so ComfyUI holds no entry for a model that is gone."""
        import comfy.model_management as mm

        for loaded in list(mm.current_loaded_models):
            if loaded.model is self.patcher:
                loaded.model_unload()
                mm.current_loaded_models.remove(loaded)


def _load_device(device) -> torch.device:
    """The engine's device as ComfyUI names it: "cuda" is ComfyUI's cuda:N (its free_memory and
    LoadedModel compare devices with their index)."""
    import comfy.model_management as mm

    dev = torch.device(device)
    comfy_dev = mm.get_torch_device()
    if dev.index is None and dev.type == comfy_dev.type:
        return comfy_dev
    return dev


def managed(value, modules: dict[str, torch.nn.Module], kind: type[PackNetworks]) -> ManagedModel:
    """``value`` (built on its device by the engine) under a ModelPatcher: loaded on that device,
    offloaded where ComfyUI offloads models (the CPU unless --highvram/--gpu-only)."""
    import comfy.model_management as mm
    import comfy.model_patcher

    load_device = _load_device(value.device)
    offload_device = load_device if device_type(load_device) == "cpu" else mm.unet_offload_device()
    root = kind(modules, load_device)
    if offload_device != load_device:  # ComfyUI makes room before it loads: start from the offload side
        root.to(offload_device)
        root.device = offload_device
    # CoreModelPatcher: the DynamicVRAM patcher where 0.33 runs it (plain ModelPatcher on the CPU); 0.3.75 has none
    patcher_class = getattr(comfy.model_patcher, "CoreModelPatcher", comfy.model_patcher.ModelPatcher)
    patcher = patcher_class(root, load_device=load_device, offload_device=offload_device, size=network_bytes(root))
    return ManagedModel(value, patcher)
