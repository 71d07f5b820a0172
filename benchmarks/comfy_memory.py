"""ComfyUI's memory and speed on the shipped two-driver workflow (not a test: it prints numbers).

Memory: for each driving clip (300 and 1200 frames of fom_dv.mp4, and the 300-frame clip placed in a
1920x1080 frame) a fresh ComfyUI test host runs `faces_by_hand_two_drivers` (5 faces, 1200x900
photo, LoadVideo -> our nodes -> SaveVideo) with a small generated model, and the server's peak
resident memory is sampled every 50 ms. The 1080p case crops the driving face window first
(FOM Crop Driving Video), as a user must for uncropped video.

Speed: the same workflow with the full-size vox-256 architecture (random weights) on a short clip,
seconds per output frame, beside the command line on the same job (the same 5 faces and frames,
`--faces`, one driver).

    python benchmarks/comfy_memory.py                    # needs `bash scripts/test.sh` to have built the env
    python benchmarks/comfy_memory.py --frames 300 1200 --speed-frames 12

Restoration: the shipped `face_restoration` workflow (one face restored by a small RestoreFormer with
random weights through Load Upscale Model, at 512 px per face and frame) on a short and a 4x longer
clip: the restorer runs on each batch inside the render, so peak memory must not grow with length.

Goals (issue 9): 1200 frames within 1.25x of 300 frames; 1080p at most 1 GiB above 256 px; ComfyUI's
seconds per frame within 1.2x of the command line's. Issue 15: restoration's long clip within 1.25x
of its short one.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "comfyui")]

import assets  # noqa: E402
from comfy_host import ComfyServer, execution_error, free_port, shared_dir  # noqa: E402
from workflow_files import api, with_inputs  # noqa: E402

BOXES = api("faces_by_hand_two_drivers")["3"]["inputs"]["boxes"]
GiB = 1 << 30


def _peak_rss(pid: int, stop: threading.Event, out: list) -> None:
    import psutil

    proc = psutil.Process(pid)
    peak = 0
    while not stop.is_set():
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out.append(peak)


def _clip(src: Path, dst: Path, frames: int, pad_1080p: bool = False) -> None:
    if dst.exists():
        return
    if not pad_1080p:
        assets.make_clip(src, dst, frames=frames, audio=True)
        return
    subprocess.run([assets.ffmpeg(), "-y", "-loglevel", "error", "-i", str(src), "-frames:v", str(frames),
                    "-vf", "scale=512:512,pad=1920:1080:704:284:gray", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-preset", "ultrafast", str(dst)], check=True)


def _prompt(clip: str, crop_window: str | None) -> dict:
    prompt = api("faces_by_hand_two_drivers")
    prompt["6"]["inputs"]["file"] = prompt["8"]["inputs"]["file"] = clip
    if crop_window:
        for video, crop in (("6", "40"), ("8", "41")):
            prompt[crop] = {"class_type": "FOMCropDrivingVideo",
                            "inputs": {"driving": [video, 0], "size": 0, "scale": 1.8, "box": crop_window,
                                       "detect_every": 0}}
        prompt["10"]["inputs"]["driving"] = ["40", 0]
        prompt["11"]["inputs"]["driving"] = ["41", 0]
    return with_inputs(prompt, "SaveVideo", filename_prefix="bench/two_drivers")


def _restore_prompt(clip: str) -> dict:
    """face_restoration on ``clip`` with its first face only (a restorer costs ~1 s per face and frame here)."""
    prompt = api("face_restoration")
    prompt["6"]["inputs"]["file"] = clip
    prompt["3"]["inputs"]["boxes"] = BOXES.split(";")[0]
    prompt["16"]["inputs"]["model_name"] = "restorer.safetensors"
    return with_inputs(prompt, "SaveVideo", filename_prefix="bench/restored")


def run_case(work: Path, checkpoint: str, clip: str, crop_window: str | None = None,
             prompt: dict | None = None) -> dict:
    """A fresh server runs the workflow (``prompt``, default the two-driver one) once on ``clip``;
    returns seconds, frames and peak RSS."""
    base = work / f"base_{clip}_{checkpoint}".replace(".", "_")
    server = ComfyServer(base_dir=base, port=free_port(), log_path=base / "server.log")
    server.start()
    try:
        (base / "models" / "fom" / checkpoint).symlink_to(work / checkpoint)
        shutil.copy(work / clip, base / "input" / clip)
        shutil.copy(shared_dir() / "media" / assets.PHOTO_MULTI, base / "input" / assets.PHOTO_MULTI)
        if prompt is None:
            prompt = _prompt(clip, crop_window)
        else:
            (base / "models" / "upscale_models").mkdir(parents=True, exist_ok=True)
            (base / "models" / "upscale_models" / "restorer.safetensors").symlink_to(work / "restorer.safetensors")
        prompt["2"]["inputs"]["ckpt_name"] = checkpoint
        stop, peak = threading.Event(), []
        sampler = threading.Thread(target=_peak_rss, args=(server.proc.pid, stop, peak), daemon=True)
        idle = __import__("psutil").Process(server.proc.pid).memory_info().rss
        sampler.start()
        t0 = time.perf_counter()
        entry = server.run(prompt, timeout=3 * 3600)
        seconds = time.perf_counter() - t0
        stop.set()
        sampler.join()
        if entry["status"]["status_str"] != "success":
            raise RuntimeError(f"{clip}: {execution_error(entry)}")
        out = [i for i in entry["outputs"]["17"]["images"] if i["filename"].endswith(".mp4")][0]
        frames = assets.probe(server.output_path(out))["frames"]
        return {"seconds": seconds, "frames": frames, "peak": peak[0], "idle": idle}
    finally:
        server.stop()


def cli_seconds(work: Path, checkpoint: str, clip: str) -> dict:
    out = work / "cli_out"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fom_pipeline", "--source_image",
                    str(shared_dir() / "media" / assets.PHOTO_MULTI), "--driving_video", str(work / clip),
                    "--weight_path", str(work / checkpoint), "--faces", BOXES, "--multi_person", "--relative",
                    "--adapt_scale", "--batch_size", "8", "--output", str(out), "--overwrite", "--quiet"],
                   cwd=REPO, check=True)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "frames": assets.probe(out / "result.mp4")["frames"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, nargs=2, default=(300, 1200), help="short and long clip lengths")
    ap.add_argument("--speed-frames", type=int, default=12, help="clip length for the full-size speed run")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--restore-frames", type=int, nargs=2, default=(24, 96),
                    help="short and long clip lengths for the restoration case")
    ap.add_argument("--only-restore", action="store_true", help="run the restoration case alone")
    args = ap.parse_args()
    from fom_pipeline.testing import full_config

    work = Path(tempfile.mkdtemp(prefix="fom_comfy_bench_"))
    src = shared_dir() / "media" / assets.DRIVER_CROPPED
    assets.write_fomm_checkpoint(work / "tiny.pdparams")
    if args.only_restore:
        restoration_case(work, src, args.restore_frames)
        return
    short, long = args.frames
    _clip(src, work / "short.mp4", short)
    _clip(src, work / "long.mp4", long)
    _clip(src, work / "short_1080p.mp4", short, pad_1080p=True)

    print(f"memory: 5 faces, 1200x900 photo, two drivers, small generated model ({work})", flush=True)
    rows = {}
    for label, clip, window in ((f"{short} frames, 256 px", "short.mp4", None),
                                (f"{long} frames, 256 px", "long.mp4", None),
                                (f"{short} frames, 1920x1080 (cropped)", "short_1080p.mp4", "704,284,1216,796")):
        r = run_case(work, "tiny.pdparams", clip, window)
        rows[clip] = r
        print(f"  {label:34s} peak RSS {r['peak'] / 2**20:7.0f} MiB (idle server {r['idle'] / 2**20:.0f} MiB), "
              f"{r['frames']} frames in {r['seconds']:.1f} s", flush=True)
    ratio = rows["long.mp4"]["peak"] / rows["short.mp4"]["peak"]
    extra = (rows["short_1080p.mp4"]["peak"] - rows["short.mp4"]["peak"]) / GiB
    print(f"  long / short peak: {ratio:.2f}x (goal <= 1.25x); 1080p - 256 px: {extra:+.2f} GiB (goal <= 1 GiB)")
    restoration_case(work, src, args.restore_frames)

    if args.skip_speed:
        return
    print(f"speed: full-size vox-256 architecture (random weights), {args.speed_frames} frames", flush=True)
    assets.write_fomm_checkpoint(work / "full.pdparams", seed=3, config=full_config("vox-256"))
    _clip(src, work / "speed.mp4", args.speed_frames)
    comfy = run_case(work, "full.pdparams", "speed.mp4")
    cli = cli_seconds(work, "full.pdparams", "speed.mp4")
    c, k = comfy["seconds"] / comfy["frames"], cli["seconds"] / cli["frames"]
    print(f"  ComfyUI (two drivers, 3+2 faces): {c:.2f} s per output frame, peak RSS {comfy['peak'] / 2**20:.0f} MiB")
    print(f"  command line (one driver, 5 faces): {k:.2f} s per output frame")
    print(f"  ComfyUI / command line: {c / k:.2f}x (goal <= 1.2x)")
    shutil.rmtree(work, ignore_errors=True)


def restoration_case(work: Path, src: Path, frames) -> None:
    """Peak server memory of face_restoration on a short and a long clip (issue 15)."""
    from restorers import restoreformer_state, write_state

    write_state(work / "restorer.safetensors", restoreformer_state())
    print(f"restoration: 1 face, small RestoreFormer (random weights) at 512 px, {frames[0]} and {frames[1]} frames",
          flush=True)
    rows = []
    for n in frames:
        clip = f"restore_{n}.mp4"
        _clip(src, work / clip, n)
        r = run_case(work, "tiny.pdparams", clip, prompt=_restore_prompt(clip))
        rows.append(r)
        print(f"  {n:5d} frames: peak RSS {r['peak'] / 2**20:7.0f} MiB (idle server {r['idle'] / 2**20:.0f} MiB), "
              f"{r['frames']} frames in {r['seconds']:.1f} s ({r['seconds'] / r['frames']:.2f} s per frame)",
              flush=True)
    print(f"  long / short peak: {rows[1]['peak'] / rows[0]['peak']:.2f}x (goal <= 1.25x)")


if __name__ == "__main__":
    main()
