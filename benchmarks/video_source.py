"""Faces in a source video: speed against a photo source, and memory against the source's length.

Speed (in this process, the engine's streaming steps as the command line runs them, output encoded
to h264): seconds per output frame animating 1 and 5 faces of PaddleGAN's painting, once as a photo
and once as a source video of the painting (1200x900, a still camera: the same faces), with the full vox-256
architecture (random weights) at the precision "auto" picks. A video source encodes each face's crop
again every frame and reads and tracks the video; a photo's crops are encoded once.

Memory (the real command line, `python -m fom_pipeline --source_video`, a small generated model,
one face): peak RSS for a 1920x1080 source of 300 and of 1200 frames (the painting enlarged and
panning, made by ffmpeg), driven by fom_dv.mp4. Streaming must keep it flat (within 25%).

    python benchmarks/video_source.py                       # both
    python benchmarks/video_source.py --only speed --frames 8
    python benchmarks/video_source.py --only memory --lengths 300 1200
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from memory_cli import PAINTING_FACES, SHARED, measure, print_flatness  # noqa: E402

PAINTING = SHARED / "media" / "fom_source_image_multi_person.jpg"
DRIVER = SHARED / "media" / "fom_dv.mp4"
PAN_PX_PER_SECOND = 12  # the source videos pan this fast (a slow camera move)


def _ffmpeg() -> str:
    from fom_pipeline.video import ffmpeg_exe

    return ffmpeg_exe()


def panning_video(path: Path, frames: int, scale: float, size: tuple[int, int], fps: float = 25.0) -> None:
    """The painting enlarged ``scale`` times and panning right at PAN_PX_PER_SECOND, cut to ``size``."""
    w, h = size
    pan = f"crop={w}:{h}:x='min(t*{PAN_PX_PER_SECOND},iw-{w})':y=0"
    subprocess.run([_ffmpeg(), "-v", "error", "-y", "-loop", "1", "-framerate", f"{fps:g}", "-i", str(PAINTING),
                    "-vf", f"scale=iw*{scale}:ih*{scale},{pan},format=yuv420p", "-frames:v", str(frames),
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(path)], check=True)


def boxes(scale: float, count: int) -> list[tuple[float, ...]]:
    """The painting's first ``count`` faces in the frame-0 pixels of a video enlarged ``scale`` times."""
    return [tuple(float(v) * scale for v in box.split(",")) for box in PAINTING_FACES.split(";")[:count]]


def speed(frames: int, batch: int) -> None:
    from fom_pipeline import faces as F
    from fom_pipeline import pipeline as P
    from fom_pipeline.faces.track import track_faces
    from fom_pipeline.pictures import read_image
    from fom_pipeline.streams import VideoFile
    from fom_pipeline.testing import full_config, random_model
    from fom_pipeline.video_source import VideoFaceAnimation, open_source_video

    model = random_model(full_config("vox-256"), precision="auto")
    print(f"vox-256 (random weights), precision {model.precision} ({model.precision_reason}), batch {batch}, "
          f"{frames} output frames per case", flush=True)
    photo = read_image(PAINTING)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "pan.mp4"
        panning_video(clip, frames, 1.0, (photo.shape[1], photo.shape[0]))
        driving = P.driving_keypoints(model, VideoFile(DRIVER, max_frames=frames))
        rows = {}
        for count in (1, 5):
            faces = boxes(1.0, count)
            start = time.perf_counter()
            records = F.make_faces(photo.shape[:2], faces, size=model.image_size)
            animation = P.FaceAnimation(model, F.crop_faces(photo, records), driving, batch_size=batch)
            P.write_video(P.PastedFrames(photo, records, animation), Path(tmp) / "photo.mp4", overwrite=True)
            photo_s = (time.perf_counter() - start) / frames
            start = time.perf_counter()
            source = open_source_video(clip)
            tracks = track_faces(source, faces, size=model.image_size)
            tracked = time.perf_counter() - start
            animation = VideoFaceAnimation(model, source, tracks, driving, batch_size=batch)
            P.write_video(P.PastedFrames(source, tracks, animation), Path(tmp) / "video.mp4", overwrite=True)
            video_s = (time.perf_counter() - start) / frames
            rows[count] = (photo_s, video_s)
            print(f"{count} face(s): photo source {photo_s:.2f} s/frame, video source {video_s:.2f} s/frame "
                  f"({video_s / photo_s:.2f}x; tracking {tracked / frames * 1000:.0f} ms/frame)", flush=True)


def memory(lengths: list[int], batch: int) -> None:
    from fom_pipeline.testing import random_model

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "tiny.safetensors"
        random_model(seed=0).save(weights)
        # the painting at 2400x1800, the frame its top 1920x1080 panning right: face 3 stays in view
        face = ",".join(f"{v:g}" for v in boxes(2.0, 3)[2])
        results = []
        for n in lengths:
            clip = Path(tmp) / f"source_{n}.mp4"
            start = time.perf_counter()
            panning_video(clip, n, 2.0, (1920, 1080))
            made = time.perf_counter() - start
            result = measure(["--source_video", str(clip), "--driving_video", str(DRIVER), "--weight_path",
                              str(weights), "--faces", face, "--relative", "--adapt_scale", "--cpu", "--batch_size",
                              str(batch), "--output", tmp, "--filename", f"out_{n}.mp4", "--overwrite", "--quiet"])
            results.append((n, result))
            print(f"1080p source, {n:5d} frames (made in {made:.0f} s): python peak {result['python_peak_mib']:7.1f} "
                  f"MiB, process tree peak {result['tree_peak_mib']:7.1f} MiB, {result['seconds']:6.1f} s | "
                  f"{result['summary']}", flush=True)
            clip.unlink()
        print_flatness(results, 25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("speed", "memory"), default=None)
    parser.add_argument("--frames", type=int, default=8, help="output frames per speed case")
    parser.add_argument("--lengths", type=int, nargs="+", default=[300, 1200], help="source frames per memory run")
    parser.add_argument("--batch_size", type=int, default=8)
    opts = parser.parse_args()
    if opts.only in (None, "speed"):
        speed(opts.frames, opts.batch_size)
    if opts.only in (None, "memory"):
        memory(opts.lengths, opts.batch_size)


if __name__ == "__main__":
    main()
