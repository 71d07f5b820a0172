"""Every bad input gives one line on stderr, `error: ...`, a non-zero exit and no traceback.

Every case runs through the command's entry point (`fom_pipeline.cli.main`); a few also as a real
subprocess, to check the exit status and the absence of a traceback in the actual process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kit import REPO

from fom_pipeline.video import ffmpeg_exe

URL = "https://paddlegan.bj.bcebos.com/applications/first_order_model/"


def _cases(media: Path, ckpt: Path, scratch: Path) -> dict[str, tuple[list, dict, str]]:
    """name -> (arguments, extra environment, text the error line must contain)."""
    img, vid = media / "fom_source_image.png", media / "fom_dv.mp4"
    not_image = scratch / "photo.png"
    not_image.write_text("this is not a picture")
    not_video = scratch / "clip.mp4"
    not_video.write_bytes(b"\x00\x01 not a video at all" * 20)
    audio_only = scratch / "tone.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac",
                    str(audio_only)], check=True)
    bad_ckpt = scratch / "weights.safetensors"
    bad_ckpt.write_text("nope")
    existing = scratch / "existing"
    existing.mkdir()
    (existing / "result.mp4").write_bytes(b"keep me")
    empty_models = scratch / "models"
    empty_models.mkdir()
    offline = {"FOM_MODELS_DIR": str(empty_models), "FOM_ALLOW_DOWNLOAD": "0", "TORCH_HOME": str(scratch / "th")}
    out = ["--output", scratch / "out"]
    base = ["--source_image", img, "--driving_video", vid, "--weight_path", ckpt, *out]
    face = ["--faces", "48,40,208,216"]
    return {
        "missing image": (["--source_image", scratch / "nope.png", "--driving_video", vid, *out], {},
                          f"error: source image not found: {scratch / 'nope.png'} (check the path)"),
        "image is a folder": (["--source_image", scratch, "--driving_video", vid, *out], {},
                              f"error: source image is a folder, not a file: {scratch}"),
        "not an image": (["--source_image", not_image, "--driving_video", vid, *out], {},
                         f"error: source image is not an image OpenCV can read: {not_image}"),
        "missing video": (["--source_image", img, "--driving_video", scratch / "nope.mp4", *out], {},
                          f"error: driving video not found: {scratch / 'nope.mp4'} (check the path)"),
        "not a video": (["--source_image", img, "--driving_video", not_video, *out], {},
                        f"error: not a video file ffmpeg can read: {not_video}"),
        "video without frames": (["--source_image", img, "--driving_video", audio_only, *out], {},
                                 "error: video has no frames (it has no video stream)"),
        "start past the end": ([*base, *face, "--start", "500"], {},
                               "error: --start 500 s is past the end of the driving video (58.63 s)"),
        "bad boxes syntax": ([*base, "--faces", "10,20,30"], {},
                             "error: box 1 '10,20,30' is not x1,y1,x2,y2 (four numbers separated by commas)"),
        "empty box": ([*base, "--faces", "50,50,60,60;90,90,40,120"], {},
                      "error: box 2 '90,90,40,120' is empty: need x2 > x1 and y2 > y1"),
        "box outside image": ([*base, "--faces", "900,900,1000,1000"], {}, "lies outside the 256x256 image"),
        "ratio out of range": ([*base, *face, "--ratio", "1.5"], {},
                               "error: argument --ratio: ratio 1.5 is out of range; use 0.1 to 1.0"),
        "ratio not a number": ([*base, *face, "--ratio", "big"], {}, "error: argument --ratio: ratio must be a number"),
        "unknown device": ([*base, *face, "--device", "tpu"], {},
                           "error: unknown device 'tpu'; use auto, cpu, cuda, cuda:N or mps"),
        "missing weights file": (["--source_image", img, "--driving_video", vid, *face, *out,
                                  "--weight_path", scratch / "w.pdparams"], {},
                                 f"error: weights not found: {scratch / 'w.pdparams'} (check --weight_path)"),
        "weights not a checkpoint": (["--source_image", img, "--driving_video", vid, *face, *out,
                                      "--weight_path", bad_ckpt], {}, "weights.safetensors"),
        "offline weights": (["--source_image", img, "--driving_video", vid, *face, *out], offline,
                            f"download {URL}vox-cpk.pdparams and save it as {empty_models / 'fom' / 'vox-cpk.pdparams'}"
                            ", or pass --weight_path FILE"),
        "offline weights 512": (["--source_image", img, "--driving_video", vid, *face, *out, "--image_size", "512"],
                                offline, f"download {URL}vox-cpk-512.pdparams"),
        "offline weights mobile": (["--source_image", img, "--driving_video", vid, *face, *out, "--mobile_net"],
                                   offline, f"download {URL}vox-mobile.pdparams and save it as "
                                   f"{empty_models / 'fom' / 'vox-mobile.pdparams'}"),
        "offline face detector": ([*base], offline,
                                  "s3fd-619a316812.pth is missing (downloads are turned off, FOM_ALLOW_DOWNLOAD=0): "
                                  "download https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"),
        "existing output": ([*base[:-2], "--output", existing, *face], {},
                            f"error: output file already exists: {existing / 'result.mp4'} (pass --overwrite"),
        "best frame past the end": ([*base, *face, "--max_frames", "4", "--best_frame", "9"], {},
                                    "error: --best_frame 9 is past the end of the clip (4 frames)"),
        "filename without extension": ([*base, *face, "--filename", "result"], {},
                                       "error: --filename 'result' has no extension; use e.g. result.mp4"),
        "missing required flag": (["--source_image", img], {},
                                  "error: the following arguments are required: --driving_video"),
        "bad max_frames": ([*base, *face, "--max_frames", "0"], {}, "error: argument --max_frames: must be 1 or more"),
    }


@pytest.fixture(scope="module")
def cases(media_dir, tiny_checkpoint, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("errors")
    return _cases(media_dir, tiny_checkpoint, scratch), scratch


def _check_one_line(rc: int, stdout: str, stderr: str, expected: str) -> None:
    assert rc in (1, 2), (rc, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0], lines[0]
    assert "Traceback" not in stderr
    assert stdout == ""


CASE_NAMES = [
    "missing image", "image is a folder", "not an image", "missing video", "not a video", "video without frames",
    "start past the end", "bad boxes syntax", "empty box", "box outside image", "ratio out of range",
    "ratio not a number", "unknown device", "missing weights file", "weights not a checkpoint", "offline weights",
    "offline weights 512", "offline weights mobile", "offline face detector", "existing output",
    "best frame past the end", "filename without extension", "missing required flag", "bad max_frames",
]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_error_is_one_clear_line(cases, name, capsys, monkeypatch):
    """The command's own entry point, in this process (each case costs milliseconds, not a start-up)."""
    from fom_pipeline.cli import main

    table, scratch = cases
    args, env, expected = table[name]
    monkeypatch.setenv("FOM_ALLOW_DOWNLOAD", "0")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse stops this way
        rc = exit_.code
    captured = capsys.readouterr()
    _check_one_line(rc, captured.out, captured.err, expected)
    out = scratch / "out"
    assert not out.exists() or os.listdir(out) == [], "a failed run left files behind"
    if name == "existing output":
        assert (scratch / "existing" / "result.mp4").read_bytes() == b"keep me"


@pytest.mark.parametrize("name", ["not an image", "ratio out of range", "unknown device", "offline weights"])
def test_error_from_the_real_process(cases, name):
    """The same as a real subprocess: exit status, one line, no traceback."""
    table, _ = cases
    args, env, expected = table[name]
    proc = subprocess.run([sys.executable, "-m", "fom_pipeline", *map(str, args)], cwd=REPO,
                          env={**os.environ, "FOM_ALLOW_DOWNLOAD": "0", **env}, capture_output=True, text=True,
                          timeout=180)
    _check_one_line(proc.returncode, proc.stdout, proc.stderr, expected)


def test_all_cases_listed(media_dir, tmp_path):
    assert sorted(CASE_NAMES) == sorted(_cases(media_dir, Path("x.safetensors"), tmp_path))


def test_cuda_without_gpu_is_a_clear_error(media_dir, tiny_checkpoint, tmp_path):
    import torch

    proc = subprocess.run([sys.executable, "-m", "fom_pipeline", "--source_image", str(media_dir / "fom_source_image.png"),
                           "--driving_video", str(media_dir / "fom_dv.mp4"), "--weight_path", str(tiny_checkpoint),
                           "--faces", "48,40,208,216", "--device", "cuda:7", "--output", str(tmp_path),
                           "--max_frames", "2", "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=180)
    if torch.cuda.device_count() > 7:  # a machine with 8 GPUs simply runs it
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 1
    expected = ("only" if torch.cuda.is_available() else "no CUDA GPU is available")
    assert proc.stderr.startswith("error: device 'cuda:7'") and expected in proc.stderr, proc.stderr
