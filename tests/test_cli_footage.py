"""Footage as users have it, through the command line (`python -m fom_pipeline`, tiny random model):
variable frame rate in real time, every frame kept beside a shorter audio track, phone HEVC, AV1 WebM
and GIF drivers, and photos with EXIF orientation, CMYK, grey, 16-bit and alpha."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from footage import make_clip
from kit import read_frames
from PIL import Image
from test_cli import cli

from fom_pipeline.video import probe

FACE = "92,90,160,152"  # the first face of the seed's painting at half size (600x450)
FAR = np.s_[:, 250:, 300:]  # frames' pixels far from that face: the photo, untouched
VFR = [(30, 30.0), (10, 10.0), (24, 20.0)]  # 64 frames in 3.2 s


def animate(tmp_path, photo, driving, checkpoint, *extra):
    res = cli("--source_image", photo, "--driving_video", driving, "--weight_path", checkpoint, "--faces", FACE,
              "--batch_size", 8, "--output", tmp_path, "--overwrite", "--quiet", "--cpu", *extra)
    assert res.returncode == 0, res.stderr
    return res, tmp_path / "result.mp4"


@pytest.fixture(scope="module")
def photo_rgb(media_dir) -> np.ndarray:
    painting = cv2.imread(str(media_dir / "fom_source_image_multi_person.jpg"))
    return cv2.resize(painting, (600, 450), interpolation=cv2.INTER_AREA)[:, :, ::-1].copy()


@pytest.fixture(scope="module")
def photo(photo_rgb, tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    cv2.imwrite(str(path), photo_rgb[:, :, ::-1])
    return path


def test_variable_rate_clip_plays_in_real_time(tmp_path, photo, tiny_checkpoint):
    clip = make_clip(tmp_path / "vfr.mp4", VFR)
    res, out = animate(tmp_path, photo, clip, tiny_checkpoint)
    assert "animated 1 face, 64 frames" in res.stdout
    info = probe(out)
    assert info["video"]["fps"] == pytest.approx(20.0)
    assert read_frames(out).shape[0] == 64
    assert info["duration"] == pytest.approx(3.2, abs=1 / 20)  # the clip's length, not 2x slow motion
    # a rate of the user's choosing, over a window of the clip: still real time
    res, out = animate(tmp_path, photo, clip, tiny_checkpoint, "--fps", 10, "--start", 1, "--duration", 1)
    assert "animated 1 face, 10 frames" in res.stdout
    assert probe(out)["video"]["fps"] == pytest.approx(10.0) and read_frames(out).shape[0] == 10


def test_fps_flag_is_checked(tmp_path, photo, tiny_checkpoint):
    res = cli("--source_image", photo, "--driving_video", "x.mp4", "--fps", "0")
    assert res.returncode == 2 and "--fps" in res.stderr and "above 0" in res.stderr


def test_audio_ending_before_the_video_keeps_every_frame(tmp_path, photo, tiny_checkpoint):
    clip = make_clip(tmp_path / "talk.mp4", [(45, 30.0)], audio_seconds=1.48)
    res, out = animate(tmp_path, photo, clip, tiny_checkpoint)
    assert "animated 1 face, 45 frames" in res.stdout and "audio copy" in res.stdout
    assert read_frames(out).shape[0] == 45
    info = probe(out)
    assert info["audio"] == {"codec": "aac"} and info["duration"] == pytest.approx(1.5, abs=1 / 30)


@pytest.mark.parametrize("kind, frames, seconds", [("phone_hevc", 45, 1.5), ("av1_webm", 36, 1.5),
                                                   ("gif", 25, 3.25)])
def test_drivers_users_bring(tmp_path, photo, tiny_checkpoint, kind, frames, seconds):
    if kind == "phone_hevc":  # HEVC 10-bit, stored turned with a display matrix, AAC 48 kHz stereo
        clip = make_clip(tmp_path / "phone.mp4", [(45, 30.0)], "hevc10", audio_seconds=1.5, rotation=90)
    elif kind == "av1_webm":
        clip = make_clip(tmp_path / "clip.webm", [(36, 24.0)], "av1")
    else:
        clip = make_clip(tmp_path / "clip.gif", [(10, 10.0), (10, 5.0), (5, 20.0)], "gif")
    res, out = animate(tmp_path, photo, clip, tiny_checkpoint)
    assert f"animated 1 face, {frames} frames" in res.stdout
    assert read_frames(out).shape == (frames, 450, 600, 3)
    info = probe(out)
    assert info["duration"] == pytest.approx(seconds, abs=1.01 / info["video"]["fps"])
    assert (info["audio"] is not None) == (kind == "phone_hevc")


def _photo_file(kind: str, rgb: np.ndarray, folder) -> tuple:
    """``rgb`` saved as a photo of ``kind``; returns (path, the upright RGB it should read as)."""
    path = folder / f"{kind}.{'jpg' if kind in ('exif', 'cmyk') else 'png'}"
    if kind == "exif":  # stored turned a quarter left; Orientation 6 says "turn right to show"
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(path, exif=exif, quality=95)
    elif kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    elif kind == "grey":
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        cv2.imwrite(str(path), grey)
        return path, np.repeat(grey[..., None], 3, axis=2)
    elif kind == "16bit":
        cv2.imwrite(str(path), rgb[:, :, ::-1].astype(np.uint16) * 257)
    else:  # rgba: noisy alpha, dropped
        alpha = np.random.default_rng(0).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
        cv2.imwrite(str(path), np.dstack([rgb[:, :, ::-1], alpha]))
    return path, rgb


@pytest.mark.parametrize("kind", ["exif", "cmyk", "grey", "16bit", "rgba"])
def test_photos_users_bring(tmp_path, photo_rgb, tiny_checkpoint, kind):
    path, expected = _photo_file(kind, photo_rgb, tmp_path)
    clip = make_clip(tmp_path / "short.mp4", [(4, 25.0)])
    _, out = animate(tmp_path, path, clip, tiny_checkpoint)
    frames = read_frames(out)
    assert frames.shape == (4, 450, 600, 3)  # upright: 600 wide, 450 high
    # far from the face the photo is untouched: same picture, same orientation, same colours
    diff = np.abs(frames[FAR].astype(int) - expected[None][FAR].astype(int)).mean()
    assert diff < 4, f"{kind}: {diff}"
