"""Face restoration inside the streamed render: run size, resize back, batches, release; spandrel
loading for the command line (safe readers, clear errors) and --restore_model end to end."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import restorers
import torch
from kit import PAINTING_BOXES, CodePayload, faces_text, read_frames, run_cli

from fom_pipeline import pipeline as P
from fom_pipeline.errors import CheckpointError, InputError
from fom_pipeline.restore import FaceRestorer, MissingPackageError, load_restore_model, run_size
from fom_pipeline.streams import FrameArray


@pytest.fixture(scope="module")
def restoreformer(tmp_path_factory):
    """A small RestoreFormer (spandrel's FaceSR architecture) with random weights, on disk."""
    return restorers.write_state(tmp_path_factory.mktemp("restore") / "restoreformer.safetensors",
                                 restorers.restoreformer_state(seed=0))


class Recorder:
    """A stand-in model that records the sizes it is called with and returns its input shifted."""

    def __init__(self, purpose="Restoration", scale=1, minimum=0, multiple_of=1):
        from spandrel import SizeRequirements

        self.purpose, self.scale = purpose, scale
        self.size_requirements = SizeRequirements(minimum=minimum, multiple_of=multiple_of)
        self.device, self.dtype, self.calls = torch.device("cpu"), torch.float32, []

    def to(self, *args, **kwargs):
        return self

    def __call__(self, x):
        assert x.is_contiguous()  # GFPGAN .view()s its features
        self.calls.append(tuple(x.shape))
        y = torch.nn.functional.interpolate(x, scale_factor=self.scale) if self.scale != 1 else x
        return (y + 0.25).clamp(0, 1)


def test_run_size_rules():
    assert run_size(Recorder("FaceSR"), 256) == 512  # face restorers run at the 512 px they are trained at
    assert run_size(Recorder("FaceSR", minimum=512), 384) == 512  # GFPGAN's only size
    assert run_size(Recorder("SR", scale=4), 256) == 256  # upscalers run at the crop size
    assert run_size(Recorder(multiple_of=32), 250) == 256
    assert run_size(Recorder(minimum=300, multiple_of=64), 256) == 320


def test_restorer_batches_resizes_and_keeps_shape():
    model = Recorder("FaceSR")
    crops = np.random.default_rng(0).random((3, 5, 64, 64, 3), dtype=np.float32) * 0.5
    out = FaceRestorer(model, batch_size=4)(crops)
    assert out.shape == crops.shape and out.dtype == np.float32
    assert model.calls == [(4, 3, 512, 512), (4, 3, 512, 512), (4, 3, 512, 512), (3, 3, 512, 512)]
    assert abs(float((out - crops).mean()) - 0.25) < 0.01  # the model's change, resized back
    up = Recorder("SR", scale=2)
    out = FaceRestorer(up, batch_size=8)(crops)
    assert up.calls == [(8, 3, 64, 64), (7, 3, 64, 64)] and out.shape == crops.shape


def test_gfpgan_architecture_restores_a_crop_at_its_only_size():
    """GFPGAN v1.4's architecture (random weights; the file most users have): 512 px in, the crop's
    size back."""
    from spandrel import ModelLoader

    model = ModelLoader().load_from_state_dict(restorers.gfpgan_state())
    assert (model.architecture.id, model.purpose, model.size_requirements.minimum) == ("GFPGAN", "FaceSR", 512)
    crops = np.random.default_rng(1).random((1, 1, 96, 96, 3), dtype=np.float32)
    out = FaceRestorer(model)(crops)
    assert out.shape == crops.shape and np.isfinite(out).all() and np.abs(out - crops).mean() > 0.05


def test_restorer_refuses_what_is_not_an_rgb_image_model():
    with pytest.raises(InputError, match="not an image model"):
        FaceRestorer(object())
    gray = Recorder()
    gray.input_channels = 1
    with pytest.raises(InputError, match="1 input channels; use an RGB model"):
        FaceRestorer(gray)


def test_restoration_runs_per_batch_in_the_stream_and_keeps_the_frame_count(tiny_model, media_dir, restoreformer):
    from fom_pipeline.faces import crop_faces, make_faces
    from fom_pipeline.pictures import read_image
    from fom_pipeline.streams import VideoFile

    photo = read_image(media_dir / "fom_source_image_multi_person.jpg")
    records = make_faces(photo.shape[:2], [(190, 170, 320, 305), (600, 185, 700, 300)], size=64)
    driving = np.concatenate(list(VideoFile(media_dir / "fom_dv.mp4", max_frames=3).chunks(3)))
    kp = P.driving_keypoints(tiny_model, FrameArray(driving, fps=30))
    animation = P.FaceAnimation(tiny_model, crop_faces(photo, records), kp, batch_size=2)
    side = tiny_model.image_size
    model = load_restore_model(restoreformer)
    assert (model.architecture.id, model.purpose) == ("RestoreFormer", "FaceSR")
    seen = []

    class Counting(FaceRestorer):
        def __call__(self, crops):
            seen.append(crops.shape)
            return super().__call__(crops)

    plain = np.concatenate(list(P.PastedFrames(photo, records, animation).chunks()))
    restored_src = P.PastedFrames(photo, records, animation, restore=Counting(model))
    assert seen == [] and restored_src.frame_count == 3  # lazy
    restored = np.concatenate(list(restored_src.chunks()))
    assert seen == [(2, 2, side, side, 3), (2, 1, side, side, 3)], "restored a batch at a time, never the whole clip"
    assert restored.shape == plain.shape == (3, 900, 1200, 3)
    for x1, y1, x2, y2 in (r.crop_box for r in records):  # each pasted face differs from the run without it
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        core = (slice(None), slice(cy - 20, cy + 20), slice(cx - 20, cx + 20))
        assert np.abs(restored[core].astype(int) - plain[core].astype(int)).mean() > 5
    far = (slice(None), slice(0, 100), slice(400, 600))
    assert np.array_equal(restored[far], plain[far])


def test_restorer_moves_the_model_and_back():
    model = Recorder()
    moves = []
    model.to = lambda device, *a, **k: moves.append(str(device)) or model
    model.device = torch.device("meta")
    restorer = FaceRestorer(model, device="cpu")
    restorer(np.zeros((1, 32, 32, 3), np.float32))
    restorer.release()
    assert moves == ["cpu", "meta"]


def test_load_restore_model_reads_safely_and_explains_problems(tmp_path, restoreformer, monkeypatch):
    as_pth = restorers.write_state(tmp_path / "rf.pth", {"params_ema": restorers.restoreformer_state(seed=1)})
    assert load_restore_model(as_pth).architecture.id == "RestoreFormer"  # GFPGAN-style wrapped .pth
    with pytest.raises(InputError, match="restoration model not found"):
        load_restore_model(tmp_path / "missing.pth")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="is not a .safetensors, .pth, .pt, .ckpt file"):
        load_restore_model(tmp_path / "notes.txt")
    unknown = restorers.write_state(tmp_path / "unknown.safetensors", {"foo.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match="architecture spandrel .* does not know"):
        load_restore_model(unknown)

    # A pickle that would run code: torch's weights-only reader refuses it, and the code never runs.
    torch.save({"x": CodePayload(tmp_path / "ran")}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="not a readable weights file"):
        load_restore_model(tmp_path / "evil.pth")
    assert not (tmp_path / "ran").exists()
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as if spandrel were not installed
    with pytest.raises(MissingPackageError, match="pip install spandrel"):
        load_restore_model(restoreformer)


def test_cli_restore_model_changes_each_face_and_keeps_frames(tmp_path, media_dir, tiny_checkpoint, restoreformer):
    common = ["--source_image", media_dir / "fom_source_image_multi_person.jpg", "--driving_video",
              media_dir / "fom_dv.mp4", "--weight_path", tiny_checkpoint, "--faces", faces_text(PAINTING_BOXES[:1]),
              "--relative", "--adapt_scale", "--max_frames", 3, "--batch_size", 2, "--quiet"]
    res = run_cli(*common, "--output", tmp_path / "plain")
    assert res.returncode == 0, res.stderr
    res = run_cli(*common, "--restore_model", restoreformer, "--output", tmp_path / "restored")
    assert res.returncode == 0, res.stderr
    plain, restored = read_frames(tmp_path / "plain" / "result.mp4"), read_frames(tmp_path / "restored" / "result.mp4")
    assert restored.shape == plain.shape == (3, 900, 1200, 3)
    face = (slice(None), slice(200, 290), slice(210, 300))  # the core of the face's circle
    assert np.abs(restored[face].astype(int) - plain[face].astype(int)).mean() > 5
    far = (slice(None), slice(0, 100), slice(500, 700))
    assert np.abs(restored[far].astype(int) - plain[far].astype(int)).mean() < 1.0
    env = {"PYTHONPATH": str(tmp_path / "no_spandrel")}  # a spandrel that fails to import
    (tmp_path / "no_spandrel" / "spandrel").mkdir(parents=True)
    (tmp_path / "no_spandrel" / "spandrel" / "__init__.py").write_text("raise ImportError('not installed')\n")
    res = run_cli(*common, "--restore_model", restoreformer, "--output", tmp_path / "none", env=env)
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith("error: face restoration needs "
                                                                                  "the spandrel package")
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())


def test_mask_and_restoration_keep_the_motion(tmp_path):
    """With the tracking model (the photo's red marks follow the driver's), a mask on one face and a
    restorer on both (Real-ESRGAN Compact, a 2x upscaler made near-identity: it changes every pixel a
    little and is resized back) leave each red mark where the driver puts it, in every frame."""
    from spandrel import ModelLoader

    from fom_pipeline.faces import crop_faces, make_faces
    from fom_pipeline.testing import FACE_MARKS, draw_marked_face, find_mark, marked_face, tracking_model

    model = tracking_model()
    boxes = [(60, 60, 180, 180), (380, 60, 500, 180)]  # square windows (0,0,240,240) and (320,0,560,240)
    photo = np.full((300, 640, 3), 0.5, np.float32)
    records = make_faces(photo.shape[:2], boxes, size=model.image_size)
    for record in records:
        draw_marked_face(photo, record.crop_box)
    path = np.array(FACE_MARKS["red"]) + np.stack([20 * np.sin(np.arange(8) * np.pi / 4), np.zeros(8)], axis=1)
    driver = np.stack([marked_face(256, {**FACE_MARKS, "red": tuple(p)}) for p in path])
    kp = P.driving_keypoints(model, FrameArray(driver, fps=25))
    animation = P.FaceAnimation(model, crop_faces(photo, records), kp, adapt_scale=False, batch_size=3)
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[30:230, 40:200] = 1.0  # face 1 only, well inside its window
    restorer = FaceRestorer(ModelLoader().load_from_state_dict(restorers.compact_state(scale=2)))
    runs = {"plain": P.PastedFrames(photo, records, animation),
            "mask + restored": P.PastedFrames(photo, records, animation, mask=mask, restore=restorer)}
    ys, xs = np.mgrid[0:300, 0:640]
    for name, pasted in runs.items():
        frames = np.concatenate(list(pasted.chunks()))
        assert frames.shape == (8, 300, 640, 3), name
        for record in records:
            x1, y1, x2, y2 = record.crop_box
            scale = (x2 - x1) / 256
            expected = x1 + (FACE_MARKS["red"][0] + path[:, 0] - path[0, 0] + 0.5) * scale - 0.5
            near = (np.abs(xs - (x1 + x2) / 2) < 70) & (np.abs(ys - (y1 + FACE_MARKS["red"][1] * scale)) < 30)
            found = np.array([find_mark(f, "red", near) for f in frames])
            assert np.abs(found[:, 0] - expected).max() < 1.0, (name, record.crop_box, found[:, 0] - expected)
            assert np.ptp(found[:, 0]) > 25  # the mark really moves (40 crop px peak to peak)
