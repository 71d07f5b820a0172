"""Direct calls of the pack's VIDEO code inside a test host's Python, without a server.

ComfyUI's own classes (VideoFromFile, folder_paths, comfy.utils) exist only in a host's source
tree, and the two hosts cannot share one Python process, so each call runs in a subprocess:
``python host_calls.py '{"call": NAME, "kwargs": {...}, "temp": DIR}'`` with the host's folder as
its working directory and the host's environment; it loads this repo the way ComfyUI loads a
custom node and prints the call's JSON result on its last line. ``host_call`` (below) does that
from a test. The calls return plain facts (sizes, counts, stream properties); tests assert on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULT_MARK = "HOST_CALL_RESULT "


def host_call(host, call: str, temp: Path, timeout: float = 240, **kwargs):
    """Run ``call(**kwargs)`` of this module in ``host``'s Python; its result, or AssertionError with
    the subprocess's output when it failed."""
    spec = json.dumps({"call": call, "kwargs": kwargs, "temp": str(temp)})
    proc = subprocess.run([sys.executable, str(Path(__file__)), spec], cwd=str(host.dir), env=host.env(),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    assert proc.returncode == 0 and lines, f"{call} failed in ComfyUI {host.name}:\n{proc.stdout[-3000:]}\n" \
                                           f"{proc.stderr[-5000:]}"
    return json.loads(lines[-1][len(RESULT_MARK):])


# -- inside the host -------------------------------------------------------------------------------
def _load_pack():
    """Import this repo as ComfyUI imports a custom node folder (package ``fom_multiface``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fom_multiface", REPO / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fom_multiface"] = module
    spec.loader.exec_module(module)
    import fom_multiface.nodes.video as video

    return video


def _stream_facts(path: str) -> dict:
    import av

    with av.open(path) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        first = frames[0]
        return {"size": os.path.getsize(path), "frames": len(frames), "codec": v.codec_context.name,
                "pix_fmt": v.codec_context.pix_fmt, "width": v.codec_context.width, "height": v.codec_context.height,
                "format": c.format.name, "color_trc": int(first.color_trc), "colorspace": int(first.colorspace),
                "color_primaries": int(first.color_primaries), "audio": [s.codec_context.name for s in c.streams.audio],
                "metadata": dict(c.metadata)}


def _source_facts(source) -> dict:
    """What a FrameSource announces, what it then decodes, and its mean frame (for content checks)."""
    decoded, total, size = 0, 0.0, None
    for chunk in source.chunks(8):
        decoded += len(chunk)
        frames = chunk.astype("float64") / (255.0 if chunk.dtype == "uint8" else 1.0)
        total += frames.mean(axis=(1, 2, 3)).sum()
        size = (int(chunk.shape[2]), int(chunk.shape[1]))
    return {"announced": int(source.frame_count), "decoded": decoded, "size": size,
            "mean": total / max(decoded, 1), "fps": float(source.fps)}


def save_with_options(clip: str, out_dir: str, saves: dict) -> dict:
    """Our VIDEO (the clip as a lazy source) saved through save_to once per ``saves`` entry
    ({file name: save_to keywords}); each file's facts."""
    video = _load_pack()
    from fom_pipeline.streams import VideoFile

    streamed = video.StreamedVideo(VideoFile(clip), "host_calls")
    facts = {}
    for name, options in saves.items():
        out = os.path.join(out_dir, name)
        streamed.save_to(out, metadata={"prompt": {"1": "x"}}, **options)
        facts[name] = _stream_facts(out)
    return facts


def core_trims(clip: str, windows: list) -> list:
    """A core VideoFromFile trimmed as Video Slice trims it, per (start, duration) window: what our
    frame_source makes of it, and how many frames core itself decodes for that trim."""
    video = _load_pack()
    from comfy_api.input_impl import VideoFromFile

    out = []
    for start_time, duration in windows:
        trimmed = VideoFromFile(clip).as_trimmed(start_time, duration, strict_duration=False)
        ours = _source_facts(video.frame_source(trimmed, "host_calls"))
        out.append({"window": [start_time, duration], "ours": ours,
                    "core_frames": int(trimmed.get_components().images.shape[0])})
    return out


def streamed_edits(clip: str) -> dict:
    """as_trimmed / as_cropped / as_resized on our VIDEO: what each announces and then yields."""
    video = _load_pack()
    from fom_pipeline.streams import VideoFile

    streamed = video.StreamedVideo(VideoFile(clip), "host_calls")
    out: dict = {"whole": _source_facts(streamed.source)}
    trims = {"tail": (-0.08, 0.0, False), "middle": (0.1, 0.1, True), "too_long": (0.1, 60.0, True),
             "too_long_loose": (0.1, 60.0, False), "past_end": (600.0, 0.0, False)}
    for name, (start, duration, strict) in trims.items():
        trimmed = streamed.as_trimmed(start, duration, strict_duration=strict)
        out[name] = None if trimmed is None else _source_facts(trimmed.source)
    cropped = streamed.as_cropped(11, 7, 101, 51)
    out["cropped"] = _source_facts(cropped.source) | {"dims": list(cropped.get_dimensions())}
    out["crop_whole"] = streamed.as_cropped(0, 0, 0, 0) is streamed
    resized = streamed.as_resized(64, 0, "bilinear")
    out["resized"] = _source_facts(resized.source) | {"dims": list(resized.get_dimensions())}
    post = streamed.as_resized(80, 80, "area", "center", post_crop=(8, 8, 64, 48))
    out["resized_post_crop"] = _source_facts(post.source)
    return out


def cropped_input(clip: str, x: int, y: int, width: int, height: int) -> dict:
    """A core VIDEO holding a crop, as later ComfyUI's VideoFromFile does (no host here has one: a
    subclass gives 0.33's VideoFromFile the later public behaviour: the cropped size from
    get_dimensions, the crop applied by save_to), read by our frame_source."""
    video = _load_pack()
    import av
    from comfy_api.input_impl import VideoFromFile

    class CroppedFile(VideoFromFile):
        def get_dimensions(self):
            return width, height

        def save_to(self, path, *args, **kwargs):
            with av.open(clip) as src, av.open(path, "w") as dst:
                stream = dst.add_stream("libx264", rate=src.streams.video[0].average_rate)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {"crf": "0"}
                for frame in src.decode(video=0):
                    rgb = frame.to_ndarray(format="rgb24")[y : y + height, x : x + width]
                    dst.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
                dst.mux(stream.encode(None))

    return _source_facts(video.frame_source(CroppedFile(clip), "host_calls"))


def _main() -> None:
    spec = json.loads(sys.argv[1])
    sys.path.insert(0, os.getcwd())  # the host's source folder, as ComfyUI's main.py runs
    sys.argv = [sys.argv[0], "--cpu"]  # as the test servers run
    import comfy.options

    comfy.options.enable_args_parsing()
    import folder_paths

    folder_paths.set_temp_directory(spec["temp"])
    result = globals()[spec["call"]](**spec["kwargs"])
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    _main()
