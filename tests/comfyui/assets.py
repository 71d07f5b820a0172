"""Inputs the real-host tests generate: a tiny FOMM checkpoint, S3FD weights, short driving clips.

No weights can be downloaded here, so models are generated with fixed seeds; media comes from
../shared/media, cut short with ffmpeg so each workflow runs in seconds on two CPU cores.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

# File names the saved workflows use (what a user has after following the README). The checkpoint
# is PaddleGAN's release name, the one FOMLoadModel can download by itself.
CHECKPOINT = "vox-cpk.pdparams"
SFD_WEIGHTS = "s3fd-619a316812.pth"
PHOTO_MULTI = "fom_source_image_multi_person.jpg"
PHOTO_FACE = "fom_source_image.png"
DRIVER_CROPPED = "fom_dv.mp4"
DRIVER_CROPPED_2 = "fom_dv_mirrored.mp4"
DRIVER_HEAD = "lp_driving_d0.mp4"
# The restoration workflow's model (models/upscale_models/); the tests put a small RestoreFormer with
# random weights under this name (spandrel finds the architecture from the tensors, not the name).
RESTORE_MODEL = "GFPGANv1.4.pth"

SFD_FACE_SCORE = 0.982  # softmax([0, 4])[1]: the generated detector's score for every kept box


def write_fomm_checkpoint(path: Path, seed: int = 0, config: dict | None = None) -> None:
    """A random FOMM (small unless ``config`` says otherwise) in PaddleGAN's .pdparams layout, as
    paddle.save writes the released vox-cpk.pdparams."""
    from fom_pipeline.testing import random_model, write_model_pdparams

    write_model_pdparams(path, random_model(config, seed=seed, image_size=256))


TRACKING_CHECKPOINT = "fom-tracking.safetensors"  # the motion tests' model (fom_pipeline.testing.tracking_model)


def put_tracking_checkpoint(base: Path) -> str:
    """The tracking model in the host's models/fom/ (written once); returns its name there."""
    from fom_pipeline.testing import tracking_model

    path = base / "models" / "fom" / TRACKING_CHECKPOINT
    if not path.exists():
        tracking_model().save(path)
    return TRACKING_CHECKPOINT


def write_restore_model(path: Path, seed: int = 0) -> None:
    """A small RestoreFormer (spandrel's face restorer architecture) with random weights (tests/restorers.py)."""
    from restorers import restoreformer_state, write_state

    write_state(path, restoreformer_state(seed=seed))


def write_sfd_weights(path: Path, seed: int = 0) -> None:
    """face-alignment's S3FD network with generated weights whose output is known in advance.

    The backbone is seeded-random; every detection head is zeroed so its output is its bias alone:
    the 128-stride head (512 px anchors) says "face" with score 0.982 everywhere and the box
    regression is zero, every other head says "background". The detector therefore returns its
    512 px anchor boxes (thinned by face-alignment's NMS), a fixed, image-independent set - honest
    stand-ins for faces that exercise the whole detect -> crop -> animate -> paste path.
    """
    from face_alignment.detection.sfd.net_s3fd import s3fd

    torch.manual_seed(seed)
    net = s3fd()
    sd = net.state_dict()
    for name in sd:
        if "mbox" in name:
            sd[name] = torch.zeros_like(sd[name])
    sd["conv3_3_norm_mbox_conf.bias"] = torch.tensor([4.0, 4.0, 4.0, 0.0])
    for head in ("conv4_3_norm", "conv5_3_norm", "fc7", "conv6_2"):
        sd[f"{head}_mbox_conf.bias"] = torch.tensor([4.0, 0.0])
    sd["conv7_2_mbox_conf.bias"] = torch.tensor([0.0, 4.0])
    torch.save(sd, path)


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(src: Path, dst: Path, frames: int, fps: int | None = None, start_frame: int = 0,
              audio: bool = False, hflip: bool = False) -> None:
    """Cut ``frames`` frames of ``src`` from ``start_frame`` into ``dst`` (h264), optionally with a
    sine audio track as long as the clip, optionally mirrored."""
    filters = [f"select=gte(n\\,{start_frame})", "setpts=N/FRAME_RATE/TB"]
    if hflip:
        filters.append("hflip")
    cmd = [ffmpeg(), "-y", "-loglevel", "error", "-i", str(src)]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    cmd += ["-vf", ",".join(filters), "-frames:v", str(frames)]
    if fps:
        cmd += ["-r", str(fps)]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]
    if audio:
        rate = fps or probe(src)["fps"]
        cmd += ["-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-t", f"{frames / rate:.4f}"]
    cmd += [str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)


def probe(path: Path) -> dict:
    """Frame count, size, fps and whether there is an audio stream, read with PyAV (ComfyUI's reader)."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        count = sum(1 for _ in c.decode(v))
        info = {"frames": count, "width": v.codec_context.width, "height": v.codec_context.height,
                "fps": float(v.average_rate), "audio": len(c.streams.audio) > 0}
    return info
