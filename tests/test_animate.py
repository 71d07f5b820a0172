"""The animation API: batching, streaming, reference frames, precision, progress and input errors."""

from __future__ import annotations

import pytest
import torch

import fom_pipeline as fp
from fom_pipeline.keypoints import hull_area, movement_scale


@pytest.fixture(scope="module")
def clip(tiny_model):
    torch.manual_seed(1)
    source = torch.rand(256, 256, 3)
    driving = (source + 0.2 * torch.randn(7, 256, 256, 3)).clamp(0, 1)
    return source, tiny_model.extract_keypoints(driving, batch_size=4)


def test_keypoints_shapes_and_batching_do_not_change_values(tiny_model):
    frames = torch.rand(5, 256, 256, 3)
    a = tiny_model.extract_keypoints(frames, batch_size=2)
    b = tiny_model.extract_keypoints(frames, batch_size=5)
    assert a.value.shape == (5, 10, 2) and a.jacobian.shape == (5, 10, 2, 2)
    assert torch.allclose(a.value, b.value, atol=1e-6)
    assert a.value.abs().max() <= 1


def test_batch_size_and_streaming_give_the_same_frames(tiny_model, clip):
    source, kp = clip
    whole = tiny_model.animate(source, kp, batch_size=7)
    chunks = list(tiny_model.animate_batches(source, kp, batch_size=3))
    assert [c.shape[0] for c in chunks] == [3, 3, 1]
    assert whole.shape == (7, 256, 256, 3) and whole.dtype == torch.float32
    assert torch.allclose(torch.cat(chunks), whole, atol=1e-5)
    assert 0 <= whole.min() and whole.max() <= 1


def test_reference_frame_index_drives_relative_to_that_frame(tiny_model, clip):
    source, kp = clip
    at3 = tiny_model.animate(source, kp, reference_frame=3)
    # frame 3 is the reference: the source keypoints are not moved, so it differs least from frame 0's run
    moved = fp.normalize_keypoints(tiny_model.extract_keypoints(source), kp, kp[3])
    assert torch.allclose(moved.value[3], tiny_model.extract_keypoints(source).value[0], atol=1e-6)
    at0 = tiny_model.animate(source, kp, reference_frame=0)
    assert not torch.allclose(at3, at0, atol=1e-4)


def test_best_reference_frame_picks_the_closest_pose(tiny_model, clip):
    source, kp = clip
    src_kp = tiny_model.extract_keypoints(source)
    # plant the source's own pose at index 5: it must be chosen
    planted = fp.Keypoints(kp.value.clone(), kp.jacobian.clone())
    planted.value[5] = src_kp.value[0]
    assert fp.find_best_frame(src_kp, planted) == 5
    best = tiny_model.animate(source, planted, reference_frame="best")
    at5 = tiny_model.animate(source, planted, reference_frame=5)
    assert torch.equal(best, at5)


def test_relative_jacobian_can_be_turned_off_separately(tiny_model, clip):
    source, kp = clip
    src = tiny_model.extract_keypoints(source)
    on = fp.normalize_keypoints(src, kp, kp[0], relative=True)
    off = fp.normalize_keypoints(src, kp, kp[0], relative=True, relative_jacobian=False)
    assert torch.equal(on.value, off.value)
    assert torch.equal(off.jacobian, kp.jacobian) and not torch.equal(on.jacobian, kp.jacobian)


def test_hull_area_and_movement_scale():
    square = torch.tensor([[[0.0, 0.0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]]])
    assert hull_area(square[0].numpy()) == pytest.approx(1.0)
    big = fp.Keypoints(square * 2)
    assert movement_scale(big, fp.Keypoints(square)) == pytest.approx(2.0)


def test_bf16_stays_close_to_fp32(clip):
    from fom_pipeline.testing import random_model

    source, _ = clip
    fp32, bf16 = random_model(seed=0), random_model(seed=0, precision="bf16")
    driving = (source + 0.2 * torch.randn(3, 256, 256, 3)).clamp(0, 1)
    kp = fp32.extract_keypoints(driving)
    kp16 = bf16.extract_keypoints(driving)
    assert kp16.value.dtype == torch.float32
    assert (kp16.value - kp.value).abs().max() < 0.05
    a, b = fp32.animate(source, kp), bf16.animate(source, kp)
    mse = float(((a - b) ** 2).mean())
    assert b.dtype == torch.float32 and 10 * torch.log10(torch.tensor(1 / mse)) > 30


def test_progress_is_reported_and_an_exception_in_it_cancels(tiny_model, clip):
    source, kp = clip
    calls = []
    tiny_model.animate(source, kp, batch_size=3, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(3, 7), (6, 7), (7, 7)]

    class Stop(Exception):
        pass

    def cancel(done, total):
        raise Stop

    with pytest.raises(Stop):
        tiny_model.animate(source, kp, batch_size=2, progress=cancel)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference_frame": 99}, r"reference frame 99 is outside the driving video \(frames 0..6\)"),
        ({"reference_frame": "middle"}, "reference_frame must be"),
    ],
)
def test_bad_reference_frames(tiny_model, clip, kwargs, message):
    source, kp = clip
    with pytest.raises(fp.InputError, match=message):
        tiny_model.animate(source, kp, **kwargs)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.rand(2, 64, 64), r"RGB images shaped \[B,H,W,3\]"),
        (torch.rand(1, 64, 64, 4), r"RGB images shaped \[B,H,W,3\]"),
        (torch.rand(0, 64, 64, 3), "empty"),
        (torch.rand(1, 16, 16, 3), "16x16 pixels"),
        ("image.png", "must be an image array"),
    ],
)
def test_bad_images_get_clear_errors(tiny_model, images, message):
    with pytest.raises(fp.InputError, match=message):
        tiny_model.extract_keypoints(images)


def test_device_and_precision_errors(tiny_checkpoint):
    with pytest.raises(fp.InputError, match="unknown device 'gpu0'"):
        fp.load_model(tiny_checkpoint, device="gpu0")
    with pytest.raises(fp.InputError, match="fp16 needs a GPU"):
        fp.load_model(tiny_checkpoint, precision="fp16")
    with pytest.raises(fp.InputError, match="unknown precision"):
        fp.load_model(tiny_checkpoint, precision="int8")
    if not torch.cuda.is_available():
        with pytest.raises(fp.InputError, match="no CUDA GPU"):
            fp.load_model(tiny_checkpoint, device="cuda")


def test_inputs_at_another_size_are_resized_to_the_model(tiny_model):
    frames = torch.rand(2, 300, 200, 3)
    kp = tiny_model.extract_keypoints(frames)
    assert kp.value.shape == (2, 10, 2)
    out = tiny_model.animate(torch.rand(512, 512, 3), kp)
    assert out.shape == (2, 256, 256, 3)
