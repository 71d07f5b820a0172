"""Reading FOMM checkpoints safely: original ``.pth.tar``, PaddleGAN ``.pdparams`` and our
``.safetensors``; mapping names; building networks that fit; converting between formats.

Nothing here executes code from a file: torch files load with ``weights_only=True`` and
``.pdparams`` pickles go through an unpickler that admits numpy arrays and plain containers only.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .arrays import as_tensor
from .atomic import check_target, write_bytes
from .config import check_config, infer_config
from .errors import CheckpointError
from .networks import KPDetector, OcclusionAwareGenerator

FORMAT_TAG = "fom_pipeline/1"
REMAKE = "convert the original checkpoint again with `python -m fom_pipeline convert IN OUT.safetensors`"

# (module, name) pairs a PaddleGAN .pdparams pickle may name; anything else is refused.
PDPARAMS_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "tuple"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell bytes (array buffers); it only encodes text
}
PADDLE_NAME_MAP = {"_mean": "running_mean", "_variance": "running_var"}
IGNORED_PADDLE_KEYS = {"StructuredToParameterName@@"}


@dataclass
class Checkpoint:
    """The two networks' weights plus what the file says about them."""

    generator: dict
    kp_detector: dict
    origin: str = "fomm"  # "fomm" or "paddlegan": whose inference semantics the weights expect
    config: dict | None = None
    meta: dict = field(default_factory=dict)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in PDPARAMS_GLOBALS:
            raise CheckpointError(
                f"refusing to load: the pickle asks for '{module}.{name}', which a PaddleGAN checkpoint never "
                "contains (only numpy arrays and plain containers are allowed); the file may be malicious"
            )
        import importlib

        return getattr(importlib.import_module(module), name)


def _read_pdparams(path: Path) -> Checkpoint:
    try:
        with open(path, "rb") as f:
            data = _RestrictedUnpickler(f).load()
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable PaddleGAN .pdparams file ({exc})") from None
    if not isinstance(data, dict) or "generator" not in data or "kp_detector" not in data:
        raise CheckpointError(f"{path}: a .pdparams checkpoint must hold 'generator' and 'kp_detector' entries")

    def tensors(section) -> dict:
        out = {}
        for key, value in section.items():
            if key in IGNORED_PADDLE_KEYS:
                continue
            if isinstance(value, tuple):  # (paddle tensor name, array)
                value = value[1]
            if not isinstance(value, np.ndarray):
                raise CheckpointError(f"{path}: entry '{key}' is not an array")
            prefix, _, last = key.rpartition(".")
            name = f"{prefix}.{PADDLE_NAME_MAP.get(last, last)}" if prefix else key
            out[name] = as_tensor(value)
        return out

    return Checkpoint(tensors(data["generator"]), tensors(data["kp_detector"]), origin="paddlegan")


def weights_only_refusal(exc: pickle.UnpicklingError) -> tuple[bool, str]:
    """Read ``torch.load(weights_only=True)``'s long error: (does the pickle ask for code, short reason)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in lines:
        match = re.search(r"GLOBAL ([\w.]+)", line)
        if match:
            return True, f"it asks for {match.group(1)}"
    for line in lines:
        if line.startswith(("Unsupported", "Could not", "Expected", "Unpickling", "Unknown")):
            return False, line[:160]
    for line in lines:
        rest = line.split("error:", 1)[1].strip() if "error:" in line else ""
        if rest:
            return False, rest[:160]
    return False, lines[0][:160] if lines else "unreadable pickle"


def load_torch_weights(path, label, expected: str, unreadable: Callable[[str], Exception]):
    """``torch.load(path, weights_only=True)`` on the CPU: nothing in the file is executed.

    A pickle that asks for code is refused with one line naming ``label`` (the file as the caller
    shows it) and ``expected`` (what such a file should hold); any other failure is
    ``unreadable(reason)``, the caller's own error.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe, reason = weights_only_refusal(exc)
        if not unsafe:
            raise unreadable(reason) from None
        raise CheckpointError(f"{label}: refusing to load: the file needs code execution to unpickle ({reason}); "
                              f"{expected}") from None
    except Exception as exc:
        raise unreadable(str(exc) or type(exc).__name__) from None


def _read_torch(path: Path) -> Checkpoint:
    data = load_torch_weights(path, path, "only plain tensor checkpoints are accepted",
                              lambda reason: CheckpointError(f"{path}: not a readable torch checkpoint ({reason})"))
    if not isinstance(data, dict) or "generator" not in data or "kp_detector" not in data:
        raise CheckpointError(f"{path}: a FOMM checkpoint must hold 'generator' and 'kp_detector' state dicts")

    def clean(sd) -> dict:
        return {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}

    return Checkpoint(clean(data["generator"]), clean(data["kp_detector"]), origin="fomm")


def _stored_config(path: Path, meta: dict) -> dict | None:
    """The model config our .safetensors metadata holds (None when it holds none), as an object."""
    if "config" not in meta:
        return None
    try:
        config = json.loads(meta["config"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: the model config stored in the file is not JSON ({exc}); {REMAKE}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the model config stored in the file is {type(config).__name__}, not an "
                              f"object of model settings; {REMAKE}")
    return config


def _read_safetensors(path: Path) -> Checkpoint:
    """Our layout; a stored config is checked against the tensors' shapes (read from the header) before
    any tensor is read or any network built."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            gen_shapes, kp_shapes = _split(shapes)
            if not gen_shapes or not kp_shapes:
                raise CheckpointError(
                    f"{path}: this .safetensors holds no 'generator.*' and 'kp_detector.*' weights; "
                    "make one with `python -m fom_pipeline convert IN OUT.safetensors`"
                )
            config = _stored_config(path, meta)
            if config is not None:
                check_fits(config, gen_shapes, kp_shapes, path, "its stored config")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({exc})") from None
    gen, kp = _split(tensors)
    return Checkpoint(gen, kp, origin=meta.get("origin", "fomm"), config=config, meta=dict(meta))


def _split(named: dict) -> tuple[dict, dict]:
    """Our flat ``generator.*`` / ``kp_detector.*`` names as the two networks' own names."""
    gen = {k[len("generator."):]: v for k, v in named.items() if k.startswith("generator.")}
    kp = {k[len("kp_detector."):]: v for k, v in named.items() if k.startswith("kp_detector.")}
    return gen, kp


def _sniff(path: Path, name: str | None = None) -> str:
    name = (name or path.name).lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(".pdparams"):
        return "pdparams"
    if name.endswith((".pth.tar", ".pth", ".pt", ".tar", ".ckpt")):
        return "torch"
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:2] == b"PK":
        return "torch"
    raise CheckpointError(
        f"{path}: unknown checkpoint format; use a .pth.tar (original FOMM), .pdparams (PaddleGAN) "
        "or .safetensors file"
    )


def read_checkpoint(path: str | os.PathLike, name: str | None = None) -> Checkpoint:
    """Read weights from any supported file; raises CheckpointError with a one-line reason.

    ``name`` gives the file name that decides the format when ``path`` has another one (a download
    still called ``vox-cpk.pdparams.part`` is read as the ``.pdparams`` it will become).
    """
    path = Path(path)
    if not path.is_file():
        where = "put the file there or pick another; weights go in the models/fom folder"
        raise CheckpointError(f"checkpoint not found: {path}", python=where, cli="check the path", node=where)
    kind = _sniff(path, name)
    reader = {"safetensors": _read_safetensors, "pdparams": _read_pdparams, "torch": _read_torch}[kind]
    ckpt = reader(path)
    if ckpt.config is None:
        try:
            ckpt.config = infer_config(ckpt.generator, ckpt.kp_detector)
        except (KeyError, ValueError, IndexError) as exc:
            raise CheckpointError(f"{path}: the weights do not look like a FOMM model (cannot infer config: {exc})") from None
    return ckpt


def build_networks(config: dict) -> tuple[OcclusionAwareGenerator, KPDetector]:
    common = config["common_params"]
    generator = OcclusionAwareGenerator(**config["generator_params"], **common)
    kp_detector = KPDetector(**config["kp_detector_params"], **common)
    return generator.eval(), kp_detector.eval()


def _shape_mismatch(own: dict, given: dict) -> str:
    """Every missing, unexpected and wrong-shape key between a network's ``own`` shapes and the
    ``given`` ones, in one line ('' when they fit). PaddleGAN keeps no ``num_batches_tracked``: its
    absence is no mismatch (:func:`_fill_batch_counters` adds it)."""
    missing = [k for k in own if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in own]
    wrong = [f"{k} {tuple(given[k])} != {tuple(v)}" for k, v in own.items() if k in given and tuple(given[k]) != tuple(v)]
    parts = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            shown = ", ".join(items[:6]) + (f" (+{len(items) - 6} more)" if len(items) > 6 else "")
            parts.append(f"{title}: {shown}")
    return "; ".join(parts)


def sane_config(config, path) -> dict:
    """``config`` if :func:`~fom_pipeline.config.check_config` finds it sane, else a CheckpointError
    naming ``path``: what must hold before anything is computed from a config (even its sizes)."""
    try:
        return check_config(config)
    except ValueError as exc:
        raise CheckpointError(f"{path}: the stored model config is invalid ({exc}); {REMAKE}") from None


def check_fits(config: dict, generator_shapes: dict, kp_shapes: dict, path, described: str = "the config") -> None:
    """Refuse ``config`` unless it is sane (:func:`~fom_pipeline.config.check_config`) and the networks it
    describes have exactly the given tensor shapes. The networks are built on the meta device (shapes
    only, no memory), so a config claiming huge layers costs nothing before it is refused."""
    sane_config(config, path)
    try:
        with torch.device("meta"):
            generator, kp_detector = build_networks(config)
    except (TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: the stored model config is invalid ({exc}); {REMAKE}") from None
    for label, module, given in (("generator", generator, generator_shapes), ("kp_detector", kp_detector, kp_shapes)):
        own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        mismatch = _shape_mismatch(own, given)
        if mismatch:
            raise CheckpointError(f"{path}: {label} weights do not fit the network {described} describes: {mismatch}")


def _fill_batch_counters(module: torch.nn.Module, sd: dict) -> dict:
    """PaddleGAN has no ``num_batches_tracked``; add the zero PyTorch would start from."""
    sd = dict(sd)
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in sd:
            sd[key] = torch.zeros_like(value)
    return sd


def load_into(module: torch.nn.Module, sd: dict, label: str, path) -> None:
    """Strict load that reports every missing, unexpected and wrong-shape key at once."""
    sd = _fill_batch_counters(module, sd)
    own = module.state_dict()
    mismatch = _shape_mismatch({k: tuple(v.shape) for k, v in own.items()}, {k: tuple(v.shape) for k, v in sd.items()})
    if mismatch:
        raise CheckpointError(f"{path}: {label} weights do not fit the network: {mismatch}")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)


def networks_from_checkpoint(ckpt: Checkpoint, path="checkpoint") -> tuple[OcclusionAwareGenerator, KPDetector]:
    """Build networks for the checkpoint's config and load its weights (all or nothing); the config is
    checked against the weights' shapes first, so nothing is allocated for a config that does not fit."""
    check_fits(ckpt.config, {k: tuple(v.shape) for k, v in ckpt.generator.items()},
               {k: tuple(v.shape) for k, v in ckpt.kp_detector.items()}, path)
    generator, kp_detector = build_networks(ckpt.config)
    load_into(generator, ckpt.generator, "generator", path)
    load_into(kp_detector, ckpt.kp_detector, "kp_detector", path)
    return generator, kp_detector


def save_safetensors(path, generator: dict, kp_detector: dict, config: dict, origin: str, image_size: int,
                     overwrite: bool = True) -> None:
    """Our layout: ``generator.*`` and ``kp_detector.*`` tensors; config and origin in the metadata. Written
    atomically; ``overwrite=False`` never replaces an existing file."""
    from safetensors.torch import save

    tensors = {f"generator.{k}": v.detach().float().contiguous() if v.is_floating_point() else v.contiguous()
               for k, v in generator.items()}
    tensors.update({f"kp_detector.{k}": v.detach().float().contiguous() if v.is_floating_point() else v.contiguous()
                    for k, v in kp_detector.items()})
    meta = {"format": FORMAT_TAG, "config": json.dumps(config), "origin": origin, "image_size": str(image_size)}
    write_bytes(path, save(tensors, metadata=meta), overwrite)


DEFAULT_IMAGE_SIZE = 256
_SIZE_TOKEN = re.compile(r"^(\d{2,4})(?:px)?$")


def image_size_from_name(name: str) -> int | None:
    """A trained size written in a file name: a whole token (between ``-``, ``_``, ``.`` or spaces) of
    64..4096 that is a multiple of 64, optionally followed by ``px``: ``vox-cpk-512.pdparams`` -> 512,
    ``my-model_384.pth.tar`` -> 384, ``s3fd-619a316812.pth`` -> None. The last such token wins."""
    found = None
    for token in re.split(r"[^0-9A-Za-z]+", Path(str(name)).name.lower()):
        match = _SIZE_TOKEN.match(token)
        if match and 64 <= int(match.group(1)) <= 4096 and int(match.group(1)) % 64 == 0:
            found = int(match.group(1))
    return found


def image_size_and_source(path, ckpt: Checkpoint, image_size: int | None = None) -> tuple[int, str]:
    """The crop size to run the weights at and where it came from: ``image_size`` when given, else the
    size stored in our .safetensors metadata, else a size in the file name, else 256."""
    if image_size is not None:
        return image_size, "asked for"
    stored = ckpt.meta.get("image_size")
    if stored is not None:
        try:
            return int(stored), "stored in the file"
        except ValueError:
            raise CheckpointError(f"{path}: the stored image_size {stored!r} is not a number") from None
    from_name = image_size_from_name(Path(path).name)
    if from_name is not None:
        return from_name, "from the file name"
    return DEFAULT_IMAGE_SIZE, "the default"


def guess_image_size(path, ckpt: Checkpoint) -> int:
    """The crop size the weights were trained for: stored, else a size in the file name, else 256."""
    return image_size_and_source(path, ckpt)[0]


def convert(src, dst, overwrite: bool = True) -> Path:
    """Convert any supported checkpoint to our .safetensors layout (config and origin kept); written
    atomically, never over an existing file when ``overwrite`` is False."""
    dst = Path(dst)
    if dst.suffix != ".safetensors":
        raise CheckpointError(f"convert writes .safetensors files; name the output like {dst.with_suffix('.safetensors')}")
    check_target(dst, overwrite)  # before any work
    ckpt = read_checkpoint(src)
    generator, kp_detector = networks_from_checkpoint(ckpt, src)  # proves the weights fit before writing
    save_safetensors(dst, generator.state_dict(), kp_detector.state_dict(), ckpt.config, ckpt.origin,
                     guess_image_size(src, ckpt), overwrite)
    return dst
