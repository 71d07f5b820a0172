"""Atomic output (fom_pipeline.atomic), used by every writer: results appear whole or not at all, a disk
that refuses the write is named in one line, partials of killed runs are removed by the next run, and
results are made like any new file (0644 under the usual umask), motion files as videos.

A full disk is real here: the partial the writer is given is made a link to /dev/full, so the write
itself fails with the kernel's ENOSPC inside safetensors or ffmpeg, through the command line's own path.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kit import REPO

from fom_pipeline import atomic
from fom_pipeline.cli import main

FACE = ["--faces", "48,40,208,216"]  # the face in fom_source_image.png


@pytest.fixture()
def base(media_dir, tiny_checkpoint) -> list[str]:
    return ["--source_image", str(media_dir / "fom_source_image.png"), "--driving_video",
            str(media_dir / "fom_dv.mp4"), "--weight_path", str(tiny_checkpoint), *FACE, "--max_frames", "4",
            "--quiet", "--cpu"]


def _run(capsys, *args) -> tuple[int, list[str]]:
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


def _full_disk_for(monkeypatch, suffix: str) -> None:
    """Partials of ``suffix`` files lead to /dev/full: every write into them fails with ENOSPC."""
    real = atomic.new_partial

    def full(path):
        tmp = real(path)
        if tmp.suffix == suffix:
            os.unlink(tmp)
            os.symlink("/dev/full", tmp)
        return tmp

    monkeypatch.setattr(atomic, "new_partial", full)


def _normal_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def test_video_on_a_full_disk_says_so(monkeypatch, capsys, base, tmp_path):
    _full_disk_for(monkeypatch, ".mp4")
    out = tmp_path / "out"
    rc, lines = _run(capsys, *base, "--output", out)
    assert rc == 1 and lines == [f"error: no space left on {out} (free some space or give another --output)"]
    assert os.listdir(out) == []  # no result, no partial


def test_motion_file_on_a_full_disk_says_so(monkeypatch, capsys, base, tmp_path):
    _full_disk_for(monkeypatch, ".safetensors")
    out, motion = tmp_path / "out", tmp_path / "motion" / "m.safetensors"
    rc, lines = _run(capsys, *base, "--output", out, "--save_motion", motion)
    assert rc == 1 and lines == [f"error: no space left on {motion.parent} (free some space or give another "
                                 "--output)"], lines
    assert os.listdir(motion.parent) == [] and not (out / "result.mp4").exists()


def test_convert_on_a_full_disk_says_so(monkeypatch, capsys, tiny_checkpoint, tmp_path):
    _full_disk_for(monkeypatch, ".safetensors")
    rc, lines = _run(capsys, "convert", tiny_checkpoint, tmp_path / "c.safetensors")
    assert rc == 1 and lines == [f"error: no space left on {tmp_path} (free some space or give another --output)"]
    assert os.listdir(tmp_path) == []


def _read_only(monkeypatch, folder: Path) -> str:
    """``folder`` made unwritable: by its mode where that binds (not root), else its file system said
    read-only at the point files are created in it (root writes through any mode)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return "permission denied"

    def refuse(path):
        if Path(path).parent == folder:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path)

    real = atomic.create_new
    monkeypatch.setattr(atomic, "create_new", refuse)
    return "read-only file system"


def test_read_only_folder_motion_file_and_convert(monkeypatch, capsys, base, tiny_checkpoint, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    why = _read_only(monkeypatch, folder)
    advice = "(give another --output or change the folder's permissions)"
    rc, lines = _run(capsys, "convert", tiny_checkpoint, folder / "c.safetensors")
    assert rc == 1 and lines == [f"error: cannot write to {folder}: {why} {advice}"], lines
    rc, lines = _run(capsys, *base, "--output", tmp_path / "out", "--save_motion", folder / "m.safetensors")
    assert rc == 1 and lines == [f"error: cannot write to {folder}: {why} {advice}"], lines
    folder.chmod(0o755)
    assert os.listdir(folder) == []


def test_every_output_choice_is_checked_before_anything_loads(capsys, media_dir, tmp_path):
    """--filename result.txt is refused before anything loads: the weights named do not even exist."""
    args = ["--source_image", media_dir / "fom_source_image.png", "--driving_video", media_dir / "fom_dv.mp4",
            "--weight_path", tmp_path / "never-read.pth", *FACE, "--output", tmp_path / "out"]
    rc, lines = _run(capsys, *args, "--filename", "result.txt")
    assert rc == 1 and lines == ["error: --filename 'result.txt' is not a video name this writes h264 into; "
                                 "end it in .mp4, .m4v, .mov, .mkv"]
    rc, lines = _run(capsys, *args, "--filename", "result.webm")
    assert rc == 1 and "is not a video name this writes h264 into" in lines[0]
    rc, lines = _run(capsys, *args, "--save_motion", tmp_path / "m.json")
    assert rc == 1 and "must end in .safetensors" in lines[0]


def test_results_are_made_like_any_new_file(base, capsys, tiny_checkpoint, tmp_path):
    out, motion = tmp_path / "out", tmp_path / "m.safetensors"
    rc, lines = _run(capsys, *base, "--output", out, "--save_motion", motion)
    assert rc == 0, lines
    rc, lines = _run(capsys, "convert", tiny_checkpoint, tmp_path / "c.safetensors")
    assert rc == 0, lines
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (out / "result.mp4", motion, tmp_path / "c.safetensors")}
    assert set(modes.values()) == {oct(_normal_mode())}, modes
    assert sorted(os.listdir(tmp_path)) == ["c.safetensors", "m.safetensors", "out"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_partials_of_gone_writers_are_removed_and_no_others(tmp_path):
    gone, me = _dead_pid(), os.getpid()
    names = {
        "gone": f".result.{atomic.HOST}-{gone}-0a1b2c3d.partial.mp4",
        "running": f".result.{atomic.HOST}-{me}-0a1b2c3d.partial.mp4",
        "other host": f".result.{'0' * 8 if atomic.HOST != '0' * 8 else '1' * 8}-{gone}-0a1b2c3d.partial.mp4",
        "not ours": ".result.partial.mp4",
        "result": "result.mp4",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    assert atomic.remove_stale_partials(tmp_path) == [tmp_path / names["gone"]]
    assert sorted(os.listdir(tmp_path)) == sorted(v for k, v in names.items() if k != "gone")


def test_kill_9_mid_render_leaves_a_partial_the_next_run_removes(tmp_path, base):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "fom_pipeline", *base, "--output", str(out)]
    args[args.index("--max_frames") + 1] = "400"
    proc = subprocess.Popen([*args, "--batch_size", "2"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def writing() -> bool:  # the encoder has put frames into its partial
        return any(atomic.PARTIAL.match(p.name) and p.stat().st_size > 0 for p in out.glob(".*"))

    deadline = time.time() + 180
    while time.time() < deadline and not (out.is_dir() and writing()):
        assert proc.poll() is None, "the render ended before it could be killed"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = os.listdir(out)
    assert len(left) == 1 and atomic.PARTIAL.match(left[0]), left  # what a kill -9 cannot clean
    again = [sys.executable, "-m", "fom_pipeline", *base, "--output", str(out)]
    done = subprocess.run(again, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert os.listdir(out) == ["result.mp4"]
