"""A jobs file for the batch tests: good rows on two drivers (the tracking model, so each output's
motion is measured) and broken rows (a missing photo, a bad option, a broken video)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import motion_scene as motion
import numpy as np
from kit import run_cli

from fom_pipeline.testing import tracking_model, write_clip
from fom_pipeline.video import iter_video_frames

FRAMES = 10
TOLERANCE_PX = 1.0  # photo pixels, as tests/test_motion_follow.py
PAIR = [motion.SceneFace((40, 60, 120, 140)), motion.SceneFace((250, 60, 330, 140))]
SINGLE = [motion.SceneFace((60, 60, 160, 160))]
PATHS = {"sway_x": motion.sway(FRAMES, 0), "sway_y": motion.sway(FRAMES, 1)}
# job number -> (photo, driver, output) of the good rows
GOOD = {1: ("pair", "sway_x", "out/pair_x.mp4"), 2: ("single", "sway_x", "out/single_x.mp4"),
        4: ("pair", "sway_y", "out/pair_y.mp4"), 6: ("single", "sway_y", "out/single_y.mp4")}
FLAGS = ["--multi_person", "--relative", "--cpu", "--batch_size", 4, "--warp_border", "plain"]


def _save_png(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), np.clip(image[:, :, ::-1] * 255 + 0.5, 0, 255).astype(np.uint8))
    return path


def make_scene(folder: Path) -> dict:
    """Weights, photos, drivers and jobs.csv (paths relative to it) in ``folder``."""
    weights = folder / "tracking.safetensors"
    tracking_model().save(weights)
    _save_png(folder / "pair.png", motion.group_photo(400, 200, PAIR))
    _save_png(folder / "single.png", motion.group_photo(220, 220, SINGLE))
    for name, path in PATHS.items():
        write_clip(folder / f"{name}.mp4", motion.driver_frames(path))
    (folder / "broken.mp4").write_bytes((folder / "sway_x.mp4").read_bytes()[:300])
    faces = {"pair": motion.boxes_text(PAIR), "single": motion.boxes_text(SINGLE)}
    rows = [
        ("pair.png", "sway_x.mp4", "out/pair_x.mp4", faces["pair"], ""),
        ("single.png", "sway_x.mp4", "out/single_x.mp4", faces["single"], ""),
        ("missing.png", "sway_x.mp4", "out/missing.mp4", faces["pair"], ""),
        ("pair.png", "sway_y.mp4", "out/pair_y.mp4", faces["pair"], "0.4"),
        ("pair.png", "sway_y.mp4", "out/bad_ratio.mp4", faces["pair"], "5"),
        ("single.png", "sway_y.mp4", "out/single_y.mp4", faces["single"], ""),
        ("single.png", "broken.mp4", "out/broken.mp4", faces["single"], ""),
    ]
    jobs = folder / "jobs.csv"
    lines = ["source_image,driving_video,output,faces,ratio"] + [",".join(f'"{v}"' for v in row) for row in rows]
    jobs.write_text("\n".join(lines) + "\n")
    return {"folder": folder, "jobs": jobs, "weights": weights, "faces": faces}


def run_batch(scene: dict, *extra, env: dict | None = None, timeout: float = 600):
    return run_cli("batch", scene["jobs"], "--weight_path", scene["weights"], *FLAGS, "--quiet", *extra, env=env,
                   timeout=timeout)


def read_results(scene: dict) -> dict[int, dict]:
    lines = (scene["folder"] / "jobs.results.jsonl").read_text().splitlines()
    return {row["job"]: row for row in map(json.loads, lines)}


def frames_of(path: Path) -> np.ndarray:
    return np.concatenate(list(iter_video_frames(path)))


def assert_follows(scene: dict, number: int) -> None:
    """Job ``number``'s output: every face's red mark follows its driver in every frame."""
    photo, driver, output = GOOD[number]
    faces = PAIR if photo == "pair" else SINGLE
    frames = frames_of(scene["folder"] / output)
    assert len(frames) == FRAMES, f"job {number}: {len(frames)} frames"
    tracks = motion.red_tracks(frames, faces)
    for i, face in enumerate(faces):
        err = np.linalg.norm(tracks[:, i] - motion.expected_relative(face, PATHS[driver]), axis=-1)
        assert np.nan_to_num(err, nan=np.inf).max() < TOLERANCE_PX, f"job {number} face {i + 1}: {err.round(2)}"
