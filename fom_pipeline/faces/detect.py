"""Find faces: face-alignment's own detectors behind one small interface.

``load_face_detector`` builds face-alignment's ``SFDDetector`` (S3FD) around weights read by
``sfd_weights`` without running pickle code, downloading face-alignment's official
``s3fd-619a316812.pth`` into ``models/face_detection/`` when it is missing and downloads are
allowed. ``detect_faces`` runs it and keeps the faces ``select.select_faces`` picks (score, size,
duplicates, order).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import weights as weights_mod
from ..arrays import as_tensor
from ..errors import CheckpointError, InputError, WeightsMissingError
from ..images import as_rgb_float
from ..sfd_weights import load_sfd_network
from .boxes import Box
from .select import OVERLAP, SCORE_THRESHOLD, select_faces

BACKENDS = ("sfd", "blazeface")
Detection = tuple[float, float, float, float, float]
_CANDIDATE_THRESHOLD = 0.05  # keep low-score boxes in .detect; detect_faces applies the user's threshold


class FaceNotFoundError(InputError):
    """No face was found (or kept) in the image."""


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
            chunk = as_tensor(batch[start : start + batch_size] * 255.0).permute(0, 3, 1, 2)
            with torch.inference_mode():
                found = self.backend_detector.detect_from_batch(chunk.contiguous())
            for boxes in found:
                rows = np.asarray(boxes, dtype=np.float64).reshape(-1, 5) if len(boxes) else np.zeros((0, 5))
                results.append([tuple(float(v) for v in row) for row in rows])
        return results


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
    from ..devices import resolve_device  # "auto" and unavailable devices, as every part decides them

    device = str(resolve_device(device))
    root = _models_root(models_dir)
    if backend == "sfd":
        path = _resolve_sfd(weights_path, root, allow_download)
        return FaceDetector(_build_sfd(path, device), "sfd", device, path)
    return _load_blazeface(_blazeface_path(weights_path, root), device)


def find_detector_weights(
    backend: str = "sfd",
    weights_path: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
) -> Path | None:
    """The weights file ``load_face_detector`` would read with these arguments, if it is on disk
    (nothing is downloaded): front ends key their caches by it and notice when it is replaced."""
    root = _models_root(models_dir)
    if backend == "blazeface":
        path = _blazeface_path(weights_path, root)
    elif weights_path is not None:
        path = Path(weights_path)
    else:
        return weights_mod.find_weights("s3fd", [root, _torch_hub()])
    return path if path.is_file() else None


def _models_root(models_dir) -> Path:
    return Path(models_dir) if models_dir is not None else weights_mod.models_dir()


def _torch_hub() -> Path:
    """face-alignment's own download folder: S3FD weights are looked for there after the models folder."""
    return Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"


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
    allowed = weights_mod.downloads_allowed(None) and allow_download
    return weights_mod.ensure_weights("s3fd", root, allow_download=allowed, extra_dirs=[_torch_hub()])


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
    BackendDetector.__init__(detector, device, False)  # device already checked by resolve_device
    detector.filter_threshold = _CANDIDATE_THRESHOLD
    detector.fiter_threshold = _CANDIDATE_THRESHOLD  # the attribute's spelling in older face-alignment
    detector.face_detector = net.to(device)
    return detector


def _blazeface_path(weights_path, root: Path) -> Path:
    return Path(weights_path) if weights_path is not None else root / weights_mod.FACE_SUBDIR / "blazeface.pth"


def _load_blazeface(path: Path, device: str) -> FaceDetector:
    from face_alignment.detection.blazeface.blazeface_detector import BlazeFaceDetector

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


def detect_faces(
    detector: FaceDetector,
    image,
    threshold: float = SCORE_THRESHOLD,
    max_faces: int = 0,
    min_size: float = 0,
    order: str = "left_to_right",
    iou_threshold: float = OVERLAP,
    allow_empty: bool = False,
) -> list[tuple[Box, float]]:
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
    threshold: float = SCORE_THRESHOLD,
    min_size: float = 0,
    iou_threshold: float = OVERLAP,
) -> list[list[tuple[Box, float]]]:
    """Faces per frame [T,H,W,3], largest first (an empty list where a frame has none)."""
    frames = as_rgb_float(frames, "frames", batched=True)
    raw = detector.detect(frames, batch_size=batch_size)
    return [select_faces(r, threshold, 0, min_size, "largest", iou_threshold) for r in raw]
