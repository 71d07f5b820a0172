"""Our VIDEO and frame_source called directly inside each test host's Python (no server): what Save
Video's options do to the file, how core trims and crops are read, and that our VIDEO's own trims,
crops and resizes are exact and lazy. These cover what no host can show through its nodes (the
later ``preset`` keyword, ``as_cropped``/``as_resized``, a crop on a core VIDEO) and check on both
hosts what their nodes do show (see test_comfyui_video_options.py)."""

from __future__ import annotations

import subprocess

import assets
import pytest
from host_calls import host_call

FPS, FRAMES, W, H = 30, 18, 176, 144  # a 0.6 s clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A generated 30 fps clip with moving content and an AAC track as long as its video."""
    path = tmp_path_factory.mktemp("clips") / "testsrc.mp4"
    subprocess.run([assets.ffmpeg(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size={W}x{H}:rate={FPS}", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-frames:v", str(FRAMES), "-t", f"{FRAMES / FPS}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


SAVES = {  # file name: save_to keywords
    "plain.mp4": {},
    "crf0.mp4": {"crf": 0.0},
    "crf51.mp4": {"crf": 51.0},
    "hdr.mp4": {"crf": 20.0, "color_space": "HDR"},
    "deep.mp4": {"bit_depth": 10},
    "av1.mkv": {"format": "mkv", "codec": "av1", "crf": 30.0},
    "auto.webm": {"format": "webm", "codec": "auto"},
    "fast.mp4": {"crf": 23.0, "preset": "ultrafast"},
    "slow.mp4": {"crf": 23.0, "preset": "veryslow"},
}


@pytest.mark.timeout(400)
def test_save_to_encodes_with_the_re_encode_options(comfy_host, tmp_path, clip):
    """crf, bit depth, colour space, codec/container and (later ComfyUI's) preset reach the encoder;
    nothing asked (0.3.75's Save Video, 0.33's "auto") keeps the pack's own h264 at crf 18, untagged."""
    files = host_call(comfy_host, "save_with_options", tmp_path, clip=str(clip), out_dir=str(tmp_path), saves=SAVES)
    lossless, smallest = files["crf0.mp4"], files["crf51.mp4"]
    print(f"ComfyUI {comfy_host.name}: crf 0 -> {lossless['size']} bytes, crf 51 -> {smallest['size']} bytes")
    assert lossless["size"] > 10 * smallest["size"], (lossless["size"], smallest["size"])
    for name, facts in files.items():
        assert (facts["frames"], facts["width"], facts["height"]) == (FRAMES, W, H), name
        assert facts["audio"] == (["opus"] if name.endswith(".webm") else ["aac"]), name  # WebM takes Opus
        assert "prompt" in {k.lower() for k in facts["metadata"]}, name  # (Matroska writes PROMPT)
    plain = files["plain.mp4"]
    assert (plain["codec"], plain["pix_fmt"], plain["color_trc"]) == ("h264", "yuv420p", 2)
    assert (lossless["color_trc"], lossless["colorspace"]) == (13, 1)  # sRGB: core's tag for what it encodes
    hdr = files["hdr.mp4"]
    assert (hdr["pix_fmt"], hdr["color_trc"], hdr["color_primaries"], hdr["colorspace"]) == \
        ("yuv420p10le", 18, 9, 9)  # HDR: 10-bit BT.2020 HLG
    assert files["deep.mp4"]["pix_fmt"] == "yuv420p10le"
    assert (files["av1.mkv"]["codec"], files["av1.mkv"]["format"]) == ("libdav1d", "matroska,webm")
    assert files["auto.webm"]["codec"] == "libdav1d"  # auto is AV1 in WebM, as core picks
    assert files["fast.mp4"]["size"] > 1.1 * files["slow.mp4"]["size"], (files["fast.mp4"], files["slow.mp4"])


@pytest.mark.hosts("0.33")
@pytest.mark.timeout(300)
def test_a_core_trim_is_read_exactly(comfy_host, tmp_path, clip):
    """Only ComfyUI 0.33 trims a VideoFromFile (0.3.75's has no trim window). Our frame_source reads
    it through the public get_active_trim_window (a negative start counts from the end): it takes
    exactly the frames core itself decodes for that trim, and announces what it then decodes."""
    windows = [(-0.08, 0.0), (0.2, 0.2), (0.1, 0.0), (0.25, 0.1)]
    for facts in host_call(comfy_host, "core_trims", tmp_path, clip=str(clip), windows=windows):
        ours = facts["ours"]
        print(f"trim {facts['window']}: announced {ours['announced']}, decoded {ours['decoded']}, "
              f"core decodes {facts['core_frames']}")
        assert ours["announced"] == ours["decoded"] == facts["core_frames"], facts
        assert 0 < ours["decoded"] < FRAMES, facts


def test_our_video_trims_crops_and_resizes_lazily_and_exactly(comfy_host, tmp_path, clip):
    """as_trimmed as core's (negative start, strict_duration gives None), as_cropped with core's
    clamped even-aligned rectangle, as_resized with core's scaler: each announces what it yields."""
    facts = host_call(comfy_host, "streamed_edits", tmp_path, clip=str(clip))
    for name in ("whole", "tail", "middle", "too_long_loose", "cropped", "resized", "resized_post_crop"):
        assert facts[name]["announced"] == facts[name]["decoded"], (name, facts[name])
    assert facts["whole"]["decoded"] == FRAMES
    assert facts["tail"]["decoded"] == 2  # the frames at 0.533 and 0.567 s: after 0.6 - 0.08 s
    assert facts["middle"]["decoded"] == 3  # 0.1 .. 0.2 s: frames 3, 4, 5
    assert facts["too_long"] is None and facts["past_end"] is None  # core's Video Slice reports these
    assert facts["too_long_loose"]["decoded"] == FRAMES - 3
    assert facts["cropped"]["size"] == [100, 50] and facts["cropped"]["dims"] == [100, 50]  # x 10, y 6: even
    assert facts["crop_whole"] is True
    assert facts["resized"]["dims"] == [64, round(H * 64 / W)] == facts["resized"]["size"]
    assert facts["resized_post_crop"]["size"] == [64, 48]
    assert facts["cropped"]["mean"] != pytest.approx(facts["whole"]["mean"], abs=1e-3)


def test_a_crop_on_a_core_video_is_honoured(comfy_host, tmp_path, clip):
    """Later ComfyUI keeps a crop on VideoFromFile (its file still holds whole frames): frame_source
    takes the cropped frames, not the whole ones."""
    facts = host_call(comfy_host, "cropped_input", tmp_path, clip=str(clip), x=40, y=20, width=64, height=48)
    assert facts["size"] == (64, 48) or facts["size"] == [64, 48]
    assert facts["announced"] == facts["decoded"] == FRAMES
