"""How long ComfyUI takes to stop our render after Cancel (not a test: it prints numbers).

A fresh test host runs the two-driver workflow (5 faces, small generated model) on a long driving
clip and presses Cancel (POST /interrupt) once Save Video's render has written some frames, as
tests/comfyui/test_comfyui_streaming.py does; repeated a few times. For each: seconds from Cancel to
ComfyUI's ``execution_interrupted`` message, frames the render still reported after Cancel, and the
render's speed before it, so the stop time reads in frames as well as in seconds.

    python benchmarks/cancel_latency.py                     # needs `bash scripts/test.sh` to have built the env
    python benchmarks/cancel_latency.py --host 0.33 --repeats 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "comfyui")]

import assets  # noqa: E402
from comfy_host import HOSTS, ComfyServer, free_port, shared_dir  # noqa: E402
from test_comfyui_streaming import cancel_mid_render  # noqa: E402


def one_cancel(server: ComfyServer, clip: str, after: int, run: int) -> dict:
    watched, pressed = cancel_mid_render(server, clip, f"bench/cancel_{run}", after_frames=after)
    if pressed is None or watched.end_event != "execution_interrupted":
        raise RuntimeError(f"run {run}: no cancel mid-render ({watched.end_event}, {watched.progress[-2:]})")
    render = [p for p in watched.progress if p["node"] == "17"]
    at_press = max(p["value"] for p in render if p["t"] <= pressed)
    span = render[-1]["t"] - render[0]["t"]
    return {"seconds": watched.ended_at - pressed, "frames_after": render[-1]["value"] - at_press,
            "fps": (render[-1]["value"] - render[0]["value"]) / span if span > 0 else float("nan"),
            "late": len(watched.late)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", choices=sorted(HOSTS), default="0.3.75", help="which ComfyUI test host")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=1200, help="driving clip length")
    ap.add_argument("--after", type=int, default=16, help="press Cancel once the render wrote this many frames")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fom_cancel_bench_"))
    base = work / "base"
    server = ComfyServer(base_dir=base, port=free_port(), log_path=work / "server.log", host=HOSTS[args.host])
    server.start()
    try:
        assets.write_fomm_checkpoint(base / "models" / "fom" / assets.CHECKPOINT)
        shutil.copy(shared_dir() / "media" / assets.PHOTO_MULTI, base / "input" / assets.PHOTO_MULTI)
        clip = f"cancel_{args.frames}.mp4"
        assets.make_clip(shared_dir() / "media" / assets.DRIVER_CROPPED, base / "input" / clip, frames=args.frames,
                         audio=True)
        print(f"ComfyUI {args.host}: Cancel after {args.after} rendered frames of {args.frames} ({work})", flush=True)
        rows = []
        for run in range(args.repeats):
            row = one_cancel(server, clip, args.after, run)
            rows.append(row)
            print(f"  run {run + 1}: stopped {row['seconds']:.2f} s after Cancel, {row['frames_after']} frames "
                  f"reported after it, render {row['fps']:.1f} frames/s, {row['late']} progress after the stop",
                  flush=True)
        seconds = [r["seconds"] for r in rows]
        print(f"  stop time: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
              f"(the test asserts only that the render stops far short of its {args.frames} frames)")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
