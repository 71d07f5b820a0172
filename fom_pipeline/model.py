"""FOMModel: keypoints and animation on top of the networks, batched and cached.

What depends on the source alone (its keypoints, encoder features and dense-motion inputs) is
computed once per source; driving keypoints are computed once per video and can drive any number
of sources. Networks may run in bf16/fp16; keypoint math, softmaxes and warp grids stay float32.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .arrays import as_numpy, as_tensor
from .checkpoints import (
    Checkpoint,
    image_size_and_source,
    networks_from_checkpoint,
    read_checkpoint,
    sane_config,
    save_safetensors,
)
from .devices import resolve_device
from .errors import InputError
from .images import as_rgb_tensor
from .keypoints import Keypoints, find_best_frame, normalize_keypoints
from .networks.fused import inference_form
from .precision import PRECISIONS, AcceleratorPrecision, check_precision, choose_precision
from .resize import resize_batch

WARP_BORDERS = ("auto", "paddlegan", "plain")
Progress = Callable[[int, int], None]


def check_options(device, precision: str, warp_border: str) -> torch.device:
    """Validate the load options (device, precision, warp border); returns the device to use."""
    check_precision(precision)
    if warp_border not in WARP_BORDERS:
        raise InputError(f"unknown warp_border '{warp_border}'; use one of {', '.join(WARP_BORDERS)}")
    dev = resolve_device(device)
    if precision == "fp16" and dev.type == "cpu":
        raise InputError("fp16 needs a GPU (cuda or mps); on the CPU use auto, fp32 or bf16")
    return dev


def _low_precision_parts(generator, kp_detector) -> list[torch.nn.Module]:
    """The convolution stacks that may run in bf16/fp16 (anti-alias buffers and heads' math stay fp32)."""
    dm = generator.dense_motion_network
    parts = [generator.first, generator.down_blocks, generator.up_blocks, generator.bottleneck, generator.final,
             dm.hourglass, dm.mask, kp_detector.predictor, kp_detector.kp]
    parts += [m for m in (dm.occlusion, kp_detector.jacobian) if m is not None]
    return parts


class FOMModel:
    """A loaded First Order Motion Model ready to extract keypoints and animate sources.

    ``generator`` and ``kp_detector`` are the networks in their trained form (the checkpoint's state
    dicts, what :meth:`save` writes); ``inference`` is the form built from them once here
    (networks/fused.py), which extract_keypoints and animate run. ``precision`` is what runs
    ("auto" resolved); ``precision_reason`` says why.
    """

    def __init__(self, generator, kp_detector, config: dict, origin: str = "fomm", image_size: int = 256,
                 device="cpu", precision: str = "auto", warp_border: str = "auto",
                 accelerator_precision: AcceleratorPrecision | None = None):
        self.device = check_options(device, precision, warp_border)
        self.config = config
        self.origin = origin
        self.image_size = int(image_size)
        choice = choose_precision(precision, self.device, accelerator_precision)
        self.precision, self.precision_reason = choice.precision, choice.reason
        self.dtype = PRECISIONS[self.precision]
        self.is_mobile = bool(config["generator_params"].get("mobile_net"))
        self.warp_border = ("paddlegan" if origin == "paddlegan" else "plain") if warp_border == "auto" else warp_border
        self.generator = generator.to(self.device).eval()
        self.kp_detector = kp_detector.to(self.device).eval()
        for part in _low_precision_parts(self.generator, self.kp_detector):
            part.to(self.dtype)
        self.generator.set_warp_border(self.warp_border)
        self.inference = inference_form(self.generator, self.kp_detector)

    # -- inputs ----------------------------------------------------------------------------------------
    def _to_network(self, images: torch.Tensor) -> torch.Tensor:
        """[B, H, W, 3] in [0, 1] -> [B, 3, S, S] float32 on the device, resized to the model size."""
        s = self.image_size
        if images.shape[1:3] != (s, s):
            images = as_tensor(resize_batch(as_numpy(images), s))
        return images.to(self.device, torch.float32).permute(0, 3, 1, 2).contiguous()

    def _kp(self, x: torch.Tensor) -> Keypoints:
        out = self.inference.kp_detector(x)
        return Keypoints(out["value"], out.get("jacobian"))

    # -- public API ------------------------------------------------------------------------------------
    @torch.inference_mode()
    def extract_keypoints(self, images, batch_size: int = 32, progress: Progress | None = None) -> Keypoints:
        """Keypoints of every image: float [B, H, W, 3] in [0, 1] -> Keypoints on the CPU."""
        images = as_rgb_tensor(images)
        parts, total = [], images.shape[0]
        for start in range(0, total, max(1, int(batch_size))):
            chunk = images[start : start + batch_size]
            parts.append(self._kp(self._to_network(chunk)).to("cpu"))
            if progress is not None:
                progress(min(start + batch_size, total), total)
        return Keypoints.cat(parts)

    def animate(self, source, driving_keypoints: Keypoints, relative: bool = True, adapt_scale: bool = True,
                relative_jacobian: bool | None = None, reference_frame: int | str = 0, batch_size: int = 8,
                progress: Progress | None = None) -> torch.Tensor:
        """All driven frames of one source: float32 [T, S, S, 3] in [0, 1]."""
        return torch.cat(list(self.animate_batches(source, driving_keypoints, relative, adapt_scale,
                                                   relative_jacobian, reference_frame, batch_size, progress)))

    def animate_batches(self, source, driving_keypoints: Keypoints, relative: bool = True, adapt_scale: bool = True,
                        relative_jacobian: bool | None = None, reference_frame: int | str = 0, batch_size: int = 8,
                        progress: Progress | None = None) -> Iterator[torch.Tensor]:
        """The same frames as :meth:`animate`, yielded batch by batch so long videos stay in bounded memory.

        Each frame is driven relative to ``reference_frame`` (the reference's best-frame mode runs
        forward and backward from that frame; since frames are independent this is the same).
        """
        source = as_rgb_tensor(source, "source image")
        if source.shape[0] != 1:
            raise InputError(f"animate takes one source image at a time; got {source.shape[0]}")
        total = len(driving_keypoints)
        if total == 0:
            raise InputError("the driving video has no frames (0 keypoint sets)")
        batch_size = max(1, int(batch_size))
        with torch.inference_mode():
            x = self._to_network(source)
            kp_source = self._kp(x)
            initial_index = self.reference_index(reference_frame, kp_source, driving_keypoints)
            driving = driving_keypoints.to(self.device)
            initial = driving[initial_index]
            prepared = self.inference.generator.prepare_source(x, kp_source.as_dict(), self.dtype)
        for start in range(0, total, batch_size):
            with torch.inference_mode():
                kp = normalize_keypoints(kp_source, driving[start : start + batch_size], initial,
                                         relative, relative_jacobian, adapt_scale)
                frames = self.inference.generator.generate(prepared, kp.as_dict())["prediction"]
                frames = frames.permute(0, 2, 3, 1).float().cpu()
            if progress is not None:
                progress(min(start + batch_size, total), total)
            yield frames

    @torch.inference_mode()
    def animate_frames(self, sources, driving_keypoints: Keypoints, initial: Keypoints, relative: bool = True,
                       relative_jacobian: bool | None = None, scale: float = 1.0) -> torch.Tensor:
        """Frames of a moving source (a face cut from each frame of a video): source frame i driven by
        driving keypoints i, float [B, H, W, 3] -> float32 [B, S, S, 3].

        Each source frame is encoded on its own; with ``relative`` its own keypoints move by the
        driver's change since ``initial`` times ``scale`` (adapt_scale's ratio, worked out once per
        face by the caller, so it does not change from frame to frame).
        """
        sources = as_rgb_tensor(sources, "source frames")
        if len(driving_keypoints) != sources.shape[0]:
            raise InputError(f"{sources.shape[0]} source frames but {len(driving_keypoints)} driving keypoint sets; "
                             "give one of each per frame")
        x = self._to_network(sources)
        kp_source = self._kp(x)
        kp = normalize_keypoints(kp_source, driving_keypoints.to(self.device), initial.to(self.device), relative,
                                 relative_jacobian, adapt_scale=True, scale=float(scale))
        prepared = self.inference.generator.prepare_source(x, kp_source.as_dict(), self.dtype)
        frames = self.inference.generator.generate(prepared, kp.as_dict())["prediction"]
        return frames.permute(0, 2, 3, 1).float().cpu()

    def reference_index(self, reference_frame, kp_source: Keypoints | None, driving: Keypoints) -> int:
        """The driving frame motion is measured from: an index, "first", or "best" (the frame whose pose
        is closest to ``kp_source``'s, which only "best" needs)."""
        if isinstance(reference_frame, str):
            if reference_frame == "best":
                return find_best_frame(kp_source, driving)
            if reference_frame in ("first", "0"):
                return 0
            raise InputError(f"reference_frame must be an index, 'first' or 'best'; got '{reference_frame}'")
        index = int(reference_frame)
        if not 0 <= index < len(driving):
            raise InputError(f"reference frame {index} is outside the driving video (frames 0..{len(driving) - 1})")
        return index

    def save(self, path: str | os.PathLike) -> None:
        """Write our .safetensors layout (float32 weights, config, origin and image size in the metadata)."""
        gen = {k: v.float() if v.is_floating_point() else v for k, v in self.generator.state_dict().items()}
        kp = {k: v.float() if v.is_floating_point() else v for k, v in self.kp_detector.state_dict().items()}
        save_safetensors(path, gen, kp, self.config, self.origin, self.image_size)


MAX_IMAGE_SIZE = 4096


def size_multiple(config: dict) -> int:
    """The image sizes a config can run are the multiples of this: each hourglass halves its input
    ``num_blocks`` times after scaling it by ``scale_factor``, and the generator halves it
    ``num_down_blocks`` times; every level must divide evenly (128 for the released models)."""
    kp = config["kp_detector_params"]
    gen = config["generator_params"]
    dm = gen["dense_motion_params"]
    parts = [2 ** int(gen["num_down_blocks"])]
    for net in (kp, dm):
        parts.append(2 ** int(net["num_blocks"]) * max(1, round(1 / float(net.get("scale_factor", 1)))))
    return math.lcm(*parts)


def _check_size_value(image_size, where: str) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, float)) or image_size != int(image_size):
        raise InputError(f"image_size {image_size!r} ({where}) must be a whole number of pixels such as 256 or 512")
    image_size = int(image_size)
    if not 0 < image_size <= MAX_IMAGE_SIZE:
        raise InputError(f"image_size {image_size} ({where}) is out of range; use 128 to {MAX_IMAGE_SIZE} "
                         "(the size the model was trained at, usually 256 or 512)")
    return image_size


def check_image_size(image_size, config: dict, where: str = "asked for") -> int:
    """The crop size as an int if ``config``'s networks can run it; else an InputError saying why."""
    image_size = _check_size_value(image_size, where)
    step = size_multiple(config)
    if image_size % step:
        below = image_size // step * step
        below, above = (below, below + step) if below else (step, 2 * step)
        raise InputError(f"image_size {image_size} ({where}) does not fit this model's networks: use a multiple of "
                         f"{step} such as {below} or {above} (the size the model was trained at)")
    return image_size


def model_from_checkpoint(ckpt: Checkpoint, path, device="cpu", precision="auto", warp_border="auto",
                          image_size: int | None = None,
                          accelerator_precision: AcceleratorPrecision | None = None) -> FOMModel:
    """Build a FOMModel from read weights; ``image_size`` as in :func:`load_model`."""
    sane_config(ckpt.config, path)  # its sizes are computed below, before any network is built
    size, where = image_size_and_source(path, ckpt, image_size)
    size = check_image_size(size, ckpt.config, where if where != "from the file name" else f"from the name {Path(path).name}")
    generator, kp_detector = networks_from_checkpoint(ckpt, path)
    return FOMModel(generator, kp_detector, ckpt.config, ckpt.origin, size, device, precision, warp_border,
                    accelerator_precision)


def load_model(path: str | os.PathLike, device: str = "cpu", precision: str = "auto",
               warp_border: str = "auto", image_size: int | None = None,
               accelerator_precision: AcceleratorPrecision | None = None) -> FOMModel:
    """Load a .pth.tar / .pdparams / .safetensors checkpoint; the config is read from the tensors.

    precision: "fp32", "bf16", "fp16" (GPU only) or "auto": bf16 on CPUs with native bf16 (AVX-512
    BF16 / AMX), fp32 on other CPUs; on a GPU ``accelerator_precision(device)`` (a host application's
    choice, e.g. ComfyUI's) or else torch's report. ``model.precision`` is what runs.
    warp_border: "plain" (original FOMM), "paddlegan" (PaddleGAN's inference-mode borders) or "auto"
    (paddlegan for weights that came from PaddleGAN, plain otherwise).
    image_size: the crop size the networks run at (the size the model was trained at). None: the size
    stored in our .safetensors, else a size in the file name (``vox-cpk-512.pdparams``,
    ``...-384.pth.tar``), else 256. It must be a multiple of 128 for the released architectures.
    """
    check_options(device, precision, warp_border)  # before reading a large file
    if image_size is not None:
        image_size = _check_size_value(image_size, "asked for")
    return model_from_checkpoint(read_checkpoint(path), path, device, precision, warp_border, image_size,
                                 accelerator_precision)
