"""The test kit: what several test files need, written once.

Where the repository and the shared media are, reading pictures and videos back, the paste circle of a
face as a mask, and a pickle that would run code (a checkpoint carrying it must be refused unrun).
The real-ComfyUI checks keep their own decoder (PyAV, as ComfyUI reads videos) in
``tests/comfyui/video_checks.py``; this kit uses the engine's own readers.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FOM_SHARED_DIR", REPO.parent / "shared")).resolve()
MEDIA = SHARED / "media"
GOLDEN = SHARED / "golden"
PAINTING = MEDIA / "fom_source_image_multi_person.jpg"  # the seed's 1200x900 picture with five faces
PHOTO = MEDIA / "fom_source_image.png"  # the seed's 256x256 single face

# The five faces of the 1200x900 painting, typed by hand from a gridded view (forehead to chin,
# ear to ear, as S3FD frames a face), left to right.
PAINTING_BOXES = [
    (195.0, 180.0, 310.0, 300.0),
    (410.0, 305.0, 505.0, 440.0),
    (600.0, 185.0, 695.0, 300.0),
    (695.0, 315.0, 790.0, 440.0),
    (1085.0, 280.0, 1180.0, 395.0),
]


def faces_text(boxes) -> str:
    """Boxes as the command line's --faces takes them: "x1,y1,x2,y2;..."."""
    return ";".join(",".join(f"{v:g}" for v in box) for box in boxes)


def load_node_module(name: str) -> types.ModuleType:
    """``nodes/<name>.py`` imported without ComfyUI: the nodes package's ``__init__`` (which registers the
    nodes with ComfyUI) is skipped; modules that need no ComfyUI import, relative imports included."""
    if "fom_nodes" not in sys.modules:
        package = types.ModuleType("fom_nodes")
        package.__path__ = [str(REPO / "nodes")]
        sys.modules["fom_nodes"] = package
    return importlib.import_module(f"fom_nodes.{name}")


def run_cli(*args, timeout: float = 300, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """The real command line (``python -m fom_pipeline``) in the repository, downloads off."""
    env = {**os.environ, "FOM_ALLOW_DOWNLOAD": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fom_pipeline", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def read_rgb(path: Path) -> np.ndarray:
    """float32 RGB [H,W,3] in [0,1]."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def read_video(path: Path, every: int = 1) -> np.ndarray:
    """float32 RGB frames [T,H,W,3] in [0,1] (every n-th frame)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % every == 0:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        index += 1
    cap.release()
    assert frames, f"cannot read {path}"
    return np.stack(frames).astype(np.float32) / 255.0


def read_frames(path: Path) -> np.ndarray:
    """Every frame as uint8 RGB [T,H,W,3], decoded by the engine's own reader (ffmpeg)."""
    from fom_pipeline.video import iter_video_frames

    return np.concatenate(list(iter_video_frames(path)))


def circle_mask(hw: tuple[int, int], circles, grow: float = 0.0) -> np.ndarray:
    """bool [H,W]: pixels within ``radius + grow`` of any (cx, cy, radius) circle's centre."""
    ys, xs = np.mgrid[0 : hw[0], 0 : hw[1]]
    mask = np.zeros(hw, bool)
    for cx, cy, radius in circles:
        mask |= (xs - cx) ** 2 + (ys - cy) ** 2 <= max(0.0, radius + grow) ** 2
    return mask


def face_circle(face, ratio: float = 0.4) -> tuple[int, int, float]:
    """Where the engine pastes ``face``: the centre of its crop window and its paste radius."""
    from fom_pipeline.faces.paste import circle_radius

    x1, y1, x2, y2 = face.crop_box
    return int((x1 + x2) / 2), int((y1 + y2) / 2), circle_radius(face, ratio)


def face_mask(face, hw: tuple[int, int], ratio: float = 0.4, grow: float = 0.0) -> np.ndarray:
    """bool [H,W]: the pixels the engine's paste circle of ``face`` covers (``grow`` widens it)."""
    return circle_mask(hw, [face_circle(face, ratio)], grow)


def eroded(mask: np.ndarray, pixels: int) -> np.ndarray:
    """bool [H,W]: the mask (above half) shrunk by ``pixels`` with a round brush."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.erode((mask >= 0.5).astype(np.uint8), kernel) > 0


class CodePayload:
    """Unpickling this would create ``marker``: by ``open`` (``call="open"``) or a shell (``"system"``).

    A loader must refuse a file carrying it and leave ``marker`` absent.
    """

    def __init__(self, marker: Path | str, call: str = "system"):
        assert call in ("open", "system"), call
        self.marker, self.call = str(marker), call

    def __reduce__(self):
        if self.call == "open":
            return (open, (self.marker, "w"))
        return (os.system, (f"touch {self.marker}",))


def run_cli_measured(*args, limit_gib: float = 6.0, timeout: float = 300,
                     env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """:func:`run_cli` and that process's own peak resident memory in MiB (the kernel's ru_maxrss from
    wait4). It may use ``limit_gib`` of address space at most, so a regression that allocates what it
    should refuse fails here instead of taking the machine's memory."""
    import resource
    import tempfile
    import threading

    def limit() -> None:
        size = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    env = {**os.environ, "FOM_ALLOW_DOWNLOAD": "0", **(env or {})}
    argv = [sys.executable, "-m", "fom_pipeline", *map(str, args)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err, text=True, preexec_fn=limit)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())
    return result, usage.ru_maxrss / 1024
