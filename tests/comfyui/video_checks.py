"""Pixel checks for the videos the real host writes: the faces moved, the background did not.

The same checks the command line tests make (tests/test_cli.py), for any output of the API workflows:

- ``read_frames(path)``: the video's frames, uint8 RGB [T,H,W,3], decoded with PyAV (ComfyUI's reader).
- ``paste_circles(prompt, input_dir, detect)``: where a workflow pastes faces, worked out from the
  prompt's own inputs (LoadImage's file, boxes typed by hand or detector settings, face selections,
  paste ratio), following links by input name rather than by node id or class, so the check does not
  depend on how a workflow is wired. ``detect(photo)`` gives the detector's raw boxes for the photo.
- ``assert_faces_moved_background_still(frames, photo, circles)``: outside every paste circle the
  frames equal the photo (codec noise aside); inside every circle there is a face that is not the
  photo and that moves from frame to frame.
- ``assert_animated_not_photo(frames, photo)``: for outputs with no background (the animated crop).
- ``assert_frames_move(frames, mask)``: mean frame-to-frame change above codec noise. The random test
  checkpoints barely respond to motion (about 0.2 grey levels per frame before encoding, 0.01-0.02
  after h264), so the API tests call the checks above with ``min_motion=None``; pass a motion bound
  once the test model moves visibly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from kit import circle_mask

Circle = tuple[float, float, float]  # centre x, centre y, radius (image pixels)

# Codec noise allowed where nothing was pasted: h264 at ComfyUI's default quality, compared with the
# decoded photo (the same bounds as the command line tests).
BACKGROUND_MEAN = 2.5
BACKGROUND_P99 = 16
EDGE_MARGIN = 4  # pixels around each circle left out of the background check (codec blocks straddle it)
FACE_CHANGED_MEAN = 8.0  # a random model's face is nothing like the photo: tens of levels on average
MOTION_MEAN = 1.0  # mean frame-to-frame change inside the faces; codec noise on a still image is ~0.3


def read_frames(path: str | Path) -> np.ndarray:
    """Every frame of the first video stream as uint8 RGB [T,H,W,3]."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    assert frames, f"no video frames in {path}"
    return np.stack(frames)


def read_photo(path: str | Path) -> np.ndarray:
    """A picture as uint8 RGB [H,W,3], decoded as ComfyUI's LoadImage does (Pillow, EXIF rotation)."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB")).copy()


def _link(value) -> str | None:
    return str(value[0]) if isinstance(value, list) and len(value) == 2 else None


def _faces(prompt: dict, node_id: str, hw: tuple[int, int], photo: np.ndarray,
           detect: Callable[[np.ndarray], list]) -> list:
    """Face records (engine FaceRecord) a face-producing node hands on, from its inputs."""
    from fom_pipeline import faces as F

    inputs = prompt[node_id]["inputs"]
    if "indices" in inputs:  # a selection of an upstream face set, numbered from 1 as in the preview
        upstream = _faces(prompt, _link(inputs["faces"]), hw, photo, detect)
        picked = []
        for part in str(inputs["indices"]).replace(";", ",").split(","):
            part = part.strip()
            if "-" in part[1:]:
                first, last = (int(v) for v in part.split("-", 1))
                picked.extend(range(first, last + 1))
            elif part:
                picked.append(int(part))
        return [upstream[i - 1] for i in picked]
    crop = {k: inputs[k] for k in ("crop_mode", "crop_scale") if k in inputs}  # the window; not the crop size
    if isinstance(inputs.get("boxes"), str):  # typed by hand
        return F.make_faces(hw, F.parse_boxes(inputs["boxes"]), **crop)
    if "detector" in inputs:  # detected with the node's threshold, max_faces and order
        found = F.select_faces(detect(photo), threshold=inputs.get("threshold", 0.5),
                               max_faces=inputs.get("max_faces", 0), order=inputs.get("order", "left_to_right"))
        return F.make_faces(hw, [b for b, _ in found], [s for _, s in found], **crop)
    raise AssertionError(f"node {node_id} ({prompt[node_id]['class_type']}) gives faces in a way this check "
                         "does not know")


def _photo_name(prompt: dict, node_id: str) -> str:
    """Follow ``image`` inputs back to the picture file (through chained pastes)."""
    inputs = prompt[node_id]["inputs"]
    value = inputs["image"]
    return value if isinstance(value, str) else _photo_name(prompt, _link(value))


def paste_circles(prompt: dict, input_dir: Path, detect: Callable[[np.ndarray], list]
                  ) -> tuple[np.ndarray, list[Circle]] | None:
    """(photo uint8 [H,W,3], circles) for a workflow that pastes faces into a picture; None if it
    pastes nothing (its output is the animated crop itself).

    A paste node is any node with ``faces`` and ``ratio`` inputs; each of its faces is pasted in a
    circle centred on the face's crop window, radius ceil(ratio x window height) (the seed's rule).
    """
    from fom_pipeline.faces.paste import circle_radius

    pastes = [nid for nid, node in prompt.items() if {"faces", "ratio"} <= set(node["inputs"])]
    if not pastes:
        return None
    names = {_photo_name(prompt, nid) for nid in pastes}
    assert len(names) == 1, f"pastes into different pictures: {names}"
    photo = read_photo(Path(input_dir) / names.pop())
    hw = photo.shape[:2]
    circles: list[Circle] = []
    for nid in pastes:
        ratio = float(prompt[nid]["inputs"]["ratio"])
        for face in _faces(prompt, _link(prompt[nid]["inputs"]["faces"]), hw, photo, detect):
            x1, y1, x2, y2 = face.crop_box
            circles.append((int((x1 + x2) / 2), int((y1 + y2) / 2), circle_radius(face, ratio)))
    return photo, circles


def assert_frames_move(frames: np.ndarray, mask: np.ndarray | None = None, min_motion: float = MOTION_MEAN) -> float:
    """Mean absolute frame-to-frame change (over ``mask``, or everywhere) is clearly above codec noise."""
    assert frames.ndim == 4 and frames.shape[0] >= 2, frames.shape
    steps = np.abs(np.diff(frames.astype(np.int16), axis=0))
    motion = float((steps[:, mask] if mask is not None else steps).mean())
    assert motion > min_motion, f"the faces do not move: mean frame-to-frame change {motion:.2f} <= {min_motion}"
    return motion


def assert_faces_moved_background_still(frames: np.ndarray, photo: np.ndarray, circles: list[Circle],
                                        min_motion: float | None = MOTION_MEAN) -> dict:
    """Outside every circle the frames are the photo within codec noise; inside each circle the face
    differs from the photo; and (unless ``min_motion`` is None) the faces move from frame to frame.
    Returns the measured numbers."""
    assert circles, "no paste circles"
    assert frames.shape[1:] == photo.shape, (frames.shape, photo.shape)
    hw = photo.shape[:2]
    diff = np.abs(frames.astype(np.int16) - photo.astype(np.int16)[None])
    background = ~circle_mask(hw, circles, grow=EDGE_MARGIN)
    stats = {"background_pixels": int(background.sum())}
    assert stats["background_pixels"] > 0.05 * hw[0] * hw[1], "the circles cover (nearly) the whole picture"
    outside = diff[:, background]
    stats["background_mean"] = float(outside.mean())
    stats["background_p99"] = float(np.percentile(outside, 99))
    assert stats["background_mean"] < BACKGROUND_MEAN and stats["background_p99"] <= BACKGROUND_P99, (
        f"pixels outside the paste circles changed: {stats}")
    # Each face's core (half its radius: clear of the feathered edge and of codec bleed).
    cores = []
    for i, (cx, cy, radius) in enumerate(circles):
        core = circle_mask(hw, [(cx, cy, math.floor(radius / 2))])
        assert core.any(), f"circle {i} lies outside the picture"
        changed = float(diff[:, core].mean())
        assert changed > FACE_CHANGED_MEAN, f"circle {i} at ({cx},{cy}) r={radius}: face not pasted ({changed:.2f})"
        cores.append(changed)
    stats["face_changed_min"] = min(cores)
    if min_motion is not None:
        stats["motion"] = assert_frames_move(frames, circle_mask(hw, [(cx, cy, r / 2) for cx, cy, r in circles]),
                                             min_motion)
    return stats


def source_photo(prompt: dict, input_dir: Path) -> np.ndarray:
    """The one picture a workflow loads (the node whose ``image`` input is a file name)."""
    names = {node["inputs"]["image"] for node in prompt.values() if isinstance(node["inputs"].get("image"), str)}
    assert len(names) == 1, f"expected one loaded picture, found {names}"
    return read_photo(Path(input_dir) / names.pop())


def assert_animated_not_photo(frames: np.ndarray, photo: np.ndarray) -> float:
    """An output with no background (the animated crop itself) is the model's face, not a copy of the
    (resized) source picture. Returns the mean difference."""
    import cv2

    h, w = frames.shape[1:3]
    resized = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA) if photo.shape[:2] != (h, w) else photo
    changed = float(np.abs(frames.astype(np.int16) - resized.astype(np.int16)[None]).mean())
    assert changed > FACE_CHANGED_MEAN, f"the output is the source picture ({changed:.2f})"
    return changed
