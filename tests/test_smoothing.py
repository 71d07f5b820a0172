"""Temporal smoothing of driving keypoints: zero-phase, exact on linear motion (ends included), noise
down, a 1.2 s sway kept, jacobians with the values, and `relative` still anchored at its reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fom_pipeline.errors import InputError
from fom_pipeline.keypoints import Keypoints, smooth_keypoints, smoothing_weights
from fom_pipeline.pipeline import DrivingKeypoints
from fom_pipeline.streams import AudioTrack


def _series(values: np.ndarray, jacobian: np.ndarray | None = None) -> Keypoints:
    """Keypoints whose every coordinate follows ``values`` [T] (jacobian entries follow ``jacobian``)."""
    t = len(values)
    value = torch.from_numpy(np.broadcast_to(values[:, None, None], (t, 10, 2)).astype(np.float32).copy())
    jac = None
    if jacobian is not None:
        jac = torch.from_numpy(np.broadcast_to(jacobian[:, None, None, None], (t, 10, 2, 2)).astype(np.float32).copy())
    return Keypoints(value, jac)


def _sway(t: int, period: float = 30.0, amplitude: float = 0.2) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * np.arange(t) / period)


def sine_fit(signal: np.ndarray, period: float) -> tuple[float, float]:
    """Least-squares sine fit at a known period: amplitude and delay in frames (positive = late)."""
    phase = 2 * np.pi * np.arange(len(signal)) / period
    basis = np.stack([np.sin(phase), np.cos(phase), np.ones_like(phase)], axis=1)
    (a, b, _), *_ = np.linalg.lstsq(basis, signal, rcond=None)
    return float(np.hypot(a, b)), float(-np.arctan2(b, a) / (2 * np.pi) * period)


def test_zero_is_off():
    kp = _series(np.random.default_rng(0).normal(size=40), np.ones(40))
    assert smooth_keypoints(kp, 0) is kp


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_bad_strength_is_an_input_error(bad):
    with pytest.raises(InputError, match="0 \\(off\\) or more frames"):
        smooth_keypoints(_series(np.zeros(5)), bad)


@pytest.mark.parametrize("count", [2, 3, 7, 50])
def test_linear_motion_comes_back_unchanged_to_the_last_frame(count):
    """A steady drift (and a steadily growing jacobian) is not bent, not even at the clip's ends."""
    line = 0.3 - 0.01 * np.arange(count)
    kp = _series(line, 1.0 + 0.002 * np.arange(count))
    out = smooth_keypoints(kp, 9)
    assert torch.allclose(out.value, kp.value, atol=1e-6)
    assert torch.allclose(out.jacobian, kp.jacobian, atol=1e-6)


def test_weights_sum_to_one_and_are_symmetric_in_the_middle():
    offsets, weights = smoothing_weights(100, 5)
    assert np.allclose(weights.sum(1), 1.0)
    middle = weights[50]
    assert np.allclose(middle, middle[::-1]) and offsets[np.argmax(middle)] == 0
    assert np.all(middle >= 0)


def test_zero_phase_and_time_symmetric():
    """Reversing the clip reverses the result (no direction in time), and a sway is not delayed."""
    rng = np.random.default_rng(1)
    signal = _sway(150) + rng.normal(0, 0.02, 150)
    kp = _series(signal, 1 + signal)
    forward = smooth_keypoints(kp, 5)
    backward = smooth_keypoints(Keypoints(kp.value.flip(0), kp.jacobian.flip(0)), 5)
    assert torch.allclose(forward.value, backward.value.flip(0), atol=1e-6)
    assert torch.allclose(forward.jacobian, backward.jacobian.flip(0), atol=1e-6)
    _, lag = sine_fit(forward.value[:, 0, 0].double().numpy(), 30)
    assert abs(lag) < 0.05


def test_smooth_5_halves_jitter_and_keeps_a_1_2_s_sway():
    """At 25 fps a 1.2 s sway is 30 frames: smooth 5 keeps >= 85% of it and removes >= half the jitter."""
    t = 300
    rng = np.random.default_rng(2)
    jitter = rng.normal(0, 0.01, t)
    clean, noisy = smooth_keypoints(_series(_sway(t)), 5), smooth_keypoints(_series(_sway(t) + jitter), 5)
    amplitude, lag = sine_fit(clean.value[:, 0, 0].double().numpy(), 30)
    left = (noisy.value - clean.value)[:, 0, 0].double().numpy()
    assert amplitude / 0.2 >= 0.85
    assert abs(lag) < 0.05
    assert left.std() / jitter.std() <= 0.5
    # more smoothing: less jitter, less motion
    strong_clean = smooth_keypoints(_series(_sway(t)), 12)
    strong_left = (smooth_keypoints(_series(_sway(t) + jitter), 12).value - strong_clean.value)[:, 0, 0].numpy()
    assert strong_left.std() < left.std()
    assert sine_fit(strong_clean.value[:, 0, 0].double().numpy(), 30)[0] < amplitude


def test_jacobians_are_smoothed_with_the_values():
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.05, 60)
    out = smooth_keypoints(_series(noise, 1.0 + noise), 5)
    assert torch.allclose(out.jacobian[:, 0, 0, 0] - 1.0, out.value[:, 0, 0], atol=1e-6)
    assert out.jacobian.dtype == torch.float32 and out.value.shape == (60, 10, 2)
    assert out.value[:, 0, 0].std() < 0.6 * noise.std()


def test_short_clips_stay_finite():
    one = _series(np.array([0.4]), np.array([1.0]))
    assert torch.equal(smooth_keypoints(one, 5).value, one.value)
    for count in (2, 3):
        out = smooth_keypoints(_series(np.random.default_rng(count).normal(size=count), np.ones(count)), 30)
        assert torch.isfinite(out.value).all() and torch.isfinite(out.jacobian).all()


def test_driving_keypoints_smoothed_keeps_timing_audio_name_and_detector():
    kp = _series(np.random.default_rng(4).normal(size=20), np.ones(20))
    audio = AudioTrack("clip.mp4", 1.5)
    driving = DrivingKeypoints(kp, 30.0, audio, name="clip.mp4", detector=torch.zeros(10, 2))
    assert driving.smoothed(0) is driving
    out = driving.smoothed(4)
    assert (out.fps, out.audio, out.name) == (30.0, audio, "clip.mp4") and out.detector is driving.detector
    assert torch.allclose(out.keypoints.value, smooth_keypoints(kp, 4).value)
    assert not torch.allclose(out.keypoints.value, kp.value)


def test_relative_motion_stays_anchored_at_the_reference_frame(tiny_model):
    """With `relative`, the reference frame drives the face to its own pose whether smoothed or not
    (the smoothed reference is subtracted from the smoothed clip); later frames do change."""
    rng = np.random.default_rng(5)
    frames = rng.uniform(0, 1, (6, 64, 64, 3)).astype(np.float32)
    driving = tiny_model.extract_keypoints(frames)
    smoothed = smooth_keypoints(driving, 3)
    source = rng.uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    for reference in (0, 3):
        raw = tiny_model.animate(source, driving, relative=True, reference_frame=reference)
        smooth = tiny_model.animate(source, smoothed, relative=True, reference_frame=reference)
        assert torch.allclose(raw[reference], smooth[reference], atol=1e-5)
        others = [i for i in range(6) if i != reference]
        assert (raw[others] - smooth[others]).abs().max() > 1e-3
