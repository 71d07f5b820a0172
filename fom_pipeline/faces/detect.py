"""Find faces: face-alignment's own detectors behind one small interface, or boxes typed by hand.

``load_face_detector`` builds face-alignment's ``SFDDetector`` (S3FD) around weights we read
ourselves without running pickle code (``torch.load(weights_only=True)`` or ``.safetensors``),
downloading face-alignment's official ``s3fd-619a316812.pth`` into ``models/face_detection/`` when
it is missing and downloads are allowed. ``detect_faces`` then filters (score, size), removes
duplicates (IoU above a threshold keeps the larger box - what the seed meant to do, though its sort
was a no-op) and orders the faces.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import weights as weights_mod
from ..errors import CheckpointError, InputError, WeightsMissingError
from .images import as_rgb_float

BACKENDS = ("sfd", "blazeface")
ORDERS = ("left_to_right", "largest", "top_to_bottom")
Detection = tuple[float, float, float, float, float]
_CANDIDATE_THRESHOLD = 0.05  # keep low-score boxes in .detect; detect_faces applies the user's threshold


class FaceNotFoundError(InputError):
    """No face was found (or kept) in the image."""


NoFaceError = FaceNotFoundError


class FaceDetector:
    """A face-alignment detector object plus what it was loaded from; ``.detect`` runs it in batches."""

    def __init__(self, backend_detector, backend: str, device: str, weights_path: Path | None = None):
        self.backend_detector = backend_detector
        self.backend = backend
        self.device = device
        self.weights_path = weights_path

    def detect(self, images, batch_size: int = 4) -> list[list[Detection]]:
        """Boxes for each image of float32 [B,H,W,3] in [0,1] (or one [H,W,3]): (x1,y1,x2,y2,score) px."""
        import torch

        single = np.ndim(images) == 3
        batch = as_rgb_float(images[None] if single else images, "images", batched=True)
        results: list[list[Detection]] = []
        for start in range(0, len(batch), max(1, int(batch_size))):
            chunk = torch.from_numpy(batch[start : start + batch_size] * 255.0).permute(0, 3, 1, 2)
            with torch.inference_mode():
                found = self.backend_detector.detect_from_batch(chunk.contiguous())
            for boxes in found:
                rows = np.asarray(boxes, dtype=np.float64).reshape(-1, 5) if len(boxes) else np.zeros((0, 5))
                results.append([tuple(float(v) for v in row) for row in rows])
        return results


def _default_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_face_detector(
    backend: str = "sfd",
    weights_path: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    allow_download: bool = True,
) -> FaceDetector:
    """Build one of face-alignment's detectors from local weights (downloading S3FD if allowed).

    ``backend="sfd"``: weights ``s3fd-619a316812.pth`` from ``weights_path``, else
    ``<models_dir>/face_detection/`` (``models_dir`` defaults to the pack's models folder), else
    face-alignment's own torch-hub cache, else downloaded (when ``allow_download`` and
    ``FOM_ALLOW_DOWNLOAD`` allow it). ``backend="blazeface"``: ``blazeface.pth`` and ``anchors.npy``
    must already be in ``face_detection/`` (or ``weights_path`` with ``anchors.npy`` beside it).
    """
    if backend not in BACKENDS:
        raise InputError(f"face detector {backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
    device = _default_device(device)
    root = Path(models_dir) if models_dir is not None else weights_mod.models_dir()
    if backend == "sfd":
        path = _resolve_sfd(weights_path, root, allow_download)
        return FaceDetector(_build_sfd(path, device), "sfd", device, path)
    return _load_blazeface(weights_path, root, device)


def _resolve_sfd(weights_path, root: Path, allow_download: bool) -> Path:
    info = weights_mod.KNOWN_WEIGHTS["s3fd"]
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise WeightsMissingError(
                f"face detector weights {path} not found; download {info.url} and give its path "
                f"or put it in {root / info.subdir}"
            )
        return path
    torch_hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    allowed = weights_mod.downloads_allowed(None) and allow_download
    return weights_mod.ensure_weights("s3fd", root, allow_download=allowed, extra_dirs=[torch_hub])


def _unusable_sfd(name: str, exc: BaseException) -> CheckpointError:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return CheckpointError(
        f"{name} is not usable S3FD weights ({first[:160]}); download "
        f"{weights_mod.KNOWN_WEIGHTS['s3fd'].url} again"
    )


def read_sfd_state_dict(path: str | os.PathLike, name: str | None = None) -> dict:
    """S3FD's state dict from ``path``, read without running pickle code.

    ``.pth``/``.pt``: ``torch.load(weights_only=True)`` (a pickle that asks for anything but tensors
    and plain containers is refused); ``.safetensors``: read as such. ``name`` decides the format
    when ``path`` has another name (a download still called ``*.part``).
    """
    import pickle

    import torch

    path = Path(path)
    name = name or path.name
    try:
        if name.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        from ..checkpoints import weights_only_refusal

        unsafe, reason = weights_only_refusal(exc)
        if not unsafe:
            raise _unusable_sfd(name, ValueError(reason)) from None
        raise CheckpointError(
            f"{name}: refusing to load: the file needs code execution to unpickle ({reason}); "
            "S3FD weights are a plain tensor state dict"
        ) from None
    except Exception as exc:
        raise _unusable_sfd(name, exc) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _unusable_sfd(name, ValueError("the file holds no tensor state dict"))
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def load_sfd_network(path: str | os.PathLike, name: str | None = None):
    """face-alignment's S3FD network (on the CPU, eval mode) with the weights of ``path`` loaded strictly."""
    from face_alignment.detection.sfd.net_s3fd import s3fd

    name = name or Path(path).name
    state = read_sfd_state_dict(path, name)
    net = s3fd()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise _unusable_sfd(name, exc) from None
    return net.eval()


def _build_sfd(path: Path, device: str):
    """face-alignment's SFDDetector around a network whose weights we loaded ourselves.

    SFDDetector's own constructor would read the file with a bare ``torch.load`` on older
    face-alignment releases (and fetch a URL when given none), so it is never called: the object is
    made without it and given what the constructor sets (device, threshold, network).
    """
    from face_alignment.detection.core import FaceDetector as BackendDetector
    from face_alignment.detection.sfd.sfd_detector import SFDDetector

    net = load_sfd_network(path)
    detector = SFDDetector.__new__(SFDDetector)
    try:
        BackendDetector.__init__(detector, device, False)
    except ValueError:
        raise InputError(f"face detector device {device!r} is unknown; use cpu, cuda or mps") from None
    detector.filter_threshold = _CANDIDATE_THRESHOLD
    detector.fiter_threshold = _CANDIDATE_THRESHOLD  # the attribute's spelling in older face-alignment
    detector.face_detector = net.to(device)
    return detector


def _load_blazeface(weights_path, root: Path, device: str) -> FaceDetector:
    from face_alignment.detection.blazeface.blazeface_detector import BlazeFaceDetector

    path = (
        Path(weights_path) if weights_path is not None else root / weights_mod.FACE_SUBDIR / "blazeface.pth"
    )
    anchors = path.with_name("anchors.npy")
    for needed in (path, anchors):
        if not needed.is_file():
            raise WeightsMissingError(
                f"BlazeFace needs {needed.name} in {needed.parent}; put blazeface.pth and anchors.npy there "
                "(from hollance/BlazeFace-PyTorch) or use the sfd detector"
            )
    try:
        detector = BlazeFaceDetector(device, path_to_detector=str(path), path_to_anchor=str(anchors))
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path.name} is not usable BlazeFace weights ({str(exc)[:160]})") from None
    return FaceDetector(detector, "blazeface", device, path)


def box_iou(a, b) -> float:
    """Intersection over union of two (x1,y1,x2,y2) boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def select_faces(
    detections: Sequence,
    threshold: float = 0.5,
    max_faces: int = 0,
    min_size: float = 0,
    order: str = "left_to_right",
    iou_threshold: float = 0.3,
) -> list[tuple[tuple[float, float, float, float], float]]:
    """Filter, de-duplicate, keep the largest and order raw (x1,y1,x2,y2,score) detections of one image.

    Boxes scoring under ``threshold`` or smaller than ``min_size`` go; of two boxes overlapping by
    more than ``iou_threshold`` the larger stays. ``max_faces`` (0 = all) then keeps the largest
    faces, and only then are the kept faces numbered by ``order``. Largest, not best-scoring: the
    seed means to sort its boxes by area, largest first, and animates the first one without
    --multi_person (its sort result is discarded, so it really took S3FD's best-scoring box; every
    kept box already passed the score threshold, and size is what a user sees). Equal areas keep the
    higher score first.
    """
    if order not in ORDERS:
        raise InputError(f"face order {order!r} is unknown; choose one of {', '.join(ORDERS)}")
    if not 0 <= threshold <= 1:
        raise InputError(f"score threshold {threshold} must be between 0 and 1")
    if int(max_faces) < 0:
        raise InputError(f"max_faces {max_faces} must be 0 (all) or more")
    kept = []
    for det in detections:
        x1, y1, x2, y2 = (float(v) for v in det[:4])
        score = float(det[4]) if len(det) > 4 else 1.0
        if score < threshold or min(x2 - x1, y2 - y1) < min_size or x2 <= x1 or y2 <= y1:
            continue
        kept.append(((x1, y1, x2, y2), score))
    kept.sort(key=lambda f: (-(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]), -f[1]))  # largest first
    unique: list = []
    for face in kept:  # the larger of two overlapping boxes wins
        if all(box_iou(face[0], other[0]) <= iou_threshold for other in unique):
            unique.append(face)
    if max_faces:
        unique = unique[: int(max_faces)]  # the largest faces, before they are ordered
    if order == "left_to_right":
        unique.sort(key=lambda f: ((f[0][0] + f[0][2]) / 2, f[0][1]))
    elif order == "top_to_bottom":
        unique.sort(key=lambda f: ((f[0][1] + f[0][3]) / 2, f[0][0]))
    else:
        unique.sort(key=lambda f: -(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))
    return unique


def detect_faces(
    detector: FaceDetector,
    image,
    threshold: float = 0.5,
    max_faces: int = 0,
    min_size: float = 0,
    order: str = "left_to_right",
    iou_threshold: float = 0.3,
    allow_empty: bool = False,
) -> list[tuple[tuple[float, float, float, float], float]]:
    """Faces of one image [H,W,3] as (box, score), filtered and ordered; FaceNotFoundError if none."""
    image = as_rgb_float(image)
    raw = detector.detect(image[None])[0]
    faces = select_faces(raw, threshold, max_faces, min_size, order, iou_threshold)
    if not faces and not allow_empty:
        raise FaceNotFoundError(
            f"no face found (score threshold {threshold}, min size {min_size}); lower the threshold "
            "or give the faces by hand as boxes x1,y1,x2,y2;..."
        )
    return faces


def detect_faces_batch(
    detector: FaceDetector,
    frames,
    batch_size: int = 4,
    threshold: float = 0.5,
    min_size: float = 0,
    iou_threshold: float = 0.3,
) -> list[list[tuple[tuple[float, float, float, float], float]]]:
    """Faces per frame [T,H,W,3], largest first (an empty list where a frame has none)."""
    frames = as_rgb_float(frames, "frames", batched=True)
    raw = detector.detect(frames, batch_size=batch_size)
    return [select_faces(r, threshold, 0, min_size, "largest", iou_threshold) for r in raw]


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BOX_RE = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*$")


def parse_boxes(text: str) -> list[tuple[float, float, float, float]]:
    """Parse ``"x1,y1,x2,y2;x1,y1,x2,y2"`` (newlines also separate boxes) into float boxes."""
    if not isinstance(text, str):
        raise InputError(f"boxes must be text like 'x1,y1,x2,y2;...', got {type(text).__name__}")
    parts = [p for p in re.split(r"[;\n]", text) if p.strip()]
    if not parts:
        raise InputError("no boxes given; write them as x1,y1,x2,y2;x1,y1,x2,y2 in image pixels")
    boxes = []
    for i, part in enumerate(parts):
        match = _BOX_RE.match(part)
        if not match:
            raise InputError(
                f"box {i + 1} {part.strip()!r} is not x1,y1,x2,y2 (four numbers separated by commas)"
            )
        x1, y1, x2, y2 = (float(v) for v in match.groups())
        if x2 <= x1 or y2 <= y1:
            raise InputError(f"box {i + 1} {part.strip()!r} is empty: need x2 > x1 and y2 > y1")
        boxes.append((x1, y1, x2, y2))
    return boxes
