"""Small random models for tests and benchmarks (real weights cannot be downloaded everywhere)."""

from __future__ import annotations

import copy
import itertools
import os
import pickle
from collections import OrderedDict

import numpy as np
import torch

from .arrays import as_numpy
from .checkpoints import build_networks
from .config import RELEASE_CONFIGS
from .model import FOMModel


def tiny_config(num_kp: int = 10, mobile: bool = False) -> dict:
    """The vox architecture with narrow channels and two bottleneck blocks: fast on a CPU."""
    config = copy.deepcopy(RELEASE_CONFIGS["vox-mobile-256" if mobile else "vox-256"])
    config["common_params"]["num_kp"] = num_kp
    config["kp_detector_params"].update(block_expansion=8, max_features=32)
    gen = config["generator_params"]
    gen.update(block_expansion=8, max_features=32, num_bottleneck_blocks=2)
    gen["dense_motion_params"].update(block_expansion=8, max_features=32)
    return config


def full_config(name: str = "vox-256") -> dict:
    return copy.deepcopy(RELEASE_CONFIGS[name])


def randomize_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Seeded random weights with sane batch-norm statistics, so outputs are neither flat nor NaN."""
    for name, p in module.state_dict().items():
        if not p.is_floating_point() or name.endswith("down.weight"):
            continue
        if name.endswith("running_var") or (name.endswith("weight") and p.dim() == 1):
            p.copy_(torch.rand(p.shape, generator=generator) + 0.5)
        elif name.endswith(("running_mean", "bias")):
            p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
        else:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5)


def _identity_jacobian_head(kp_detector) -> None:
    head = kp_detector.jacobian
    if head is None:
        return
    last = head[-1] if isinstance(head, torch.nn.Sequential) else head
    maps = last.weight.shape[0] // 4
    last.weight.mul_(0.05)
    last.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(maps) + last.bias * 0.5)


def random_model(config: dict | None = None, seed: int = 0, image_size: int = 256, device: str = "cpu",
                 precision: str = "fp32", origin: str = "fomm") -> FOMModel:
    """A FOMModel with seeded random weights (jacobians near identity, keypoints spread out)."""
    config = config or tiny_config()
    generator, kp_detector = build_networks(config)
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        randomize_(generator, rng)
        randomize_(kp_detector, rng)
        _identity_jacobian_head(kp_detector)
        head = kp_detector.kp[-1] if isinstance(kp_detector.kp, torch.nn.Sequential) else kp_detector.kp
        head.weight.mul_(3.0)
    return FOMModel(generator, kp_detector, config, origin, image_size, device, precision)


def write_pdparams(path: str | os.PathLike, generator: dict, kp_detector: dict, bare: bool = False) -> None:
    """Write state dicts as PaddleGAN's ``paddle.save`` lays out a FOMM checkpoint: a pickled dict
    ``{"generator", "kp_detector"}`` of OrderedDicts mapping paddle names (``_mean``/``_variance`` for
    batch-norm statistics, no ``num_batches_tracked``) to ``(tensor name, float32 array)`` tuples
    (``bare=True``: bare arrays, as older paddle versions saved them)."""
    names = itertools.count(1)

    def section(sd: dict) -> OrderedDict:
        out = OrderedDict()
        for key, value in sd.items():
            if key.endswith("num_batches_tracked"):
                continue
            prefix, _, last = key.rpartition(".")
            last = {"running_mean": "_mean", "running_var": "_variance"}.get(last, last)
            array = as_numpy(value, np.float32)
            out[f"{prefix}.{last}"] = array if bare else (f"param_{next(names)}", array)
        return out

    with open(path, "wb") as f:
        pickle.dump({"generator": section(generator), "kp_detector": section(kp_detector)}, f, protocol=4)


def write_model_pdparams(path: str | os.PathLike, model: FOMModel) -> None:
    """A FOMModel's weights in PaddleGAN's .pdparams layout (see :func:`write_pdparams`)."""
    write_pdparams(path, model.generator.state_dict(), model.kp_detector.state_dict())



# ---------------------------------------------------------------------------------------------------
# A constructed model whose motion can be seen and measured
#
# Random weights barely move a face, so tests could only check that faces *changed*. The tracking
# model's weights are set by hand (nothing is trained) inside the real network structure, so that it
# does something simple and exact: keypoints sit on coloured marks, and the source crop is shifted as
# a whole by the motion of the red mark. A red dot drawn on a face in the photo then moves exactly as
# the red dot of the driving clip moves (times the crop scale, and the hull ratio with adapt_scale).
#
# How each network is set (every other weight is zero, every batch norm the identity):
# - keypoint detector: the hourglass hands its input (the anti-aliased, down-scaled frame) to the head
#   through its last skip concatenation; the head reads only those raw channels: keypoint k's logit is
#   a smooth 7x7 blur of "how much more of colour k than of the others" (MARK_ORDER), so the softmax
#   heatmap is a blob on that colour's mark and soft-argmax gives the mark's centre. Jacobians: the
#   identity (zero weights, bias [1, 0, 0, 1]).
# - dense motion: the mask head's bias alone gives every pixel to the red keypoint, mixed with the
#   background's zero motion in exactly the share that cancels the keypoint head's valid-convolution
#   stretch (see :func:`_follow_share`); the occlusion map is ~1 everywhere.
# - generator: the encoder and decoder carry the colour channels through (centre taps, then a
#   bilinear-like [1, 2, 1] smoothing after each nearest upsampling); the last up block spreads each
#   colour over ReLU knots and the final convolution sums them into a piecewise-linear logit, so the
#   closing sigmoid gives the warped colour back (within a few levels, :func:`_logit_knots`). The
#   picture is the crop at the feature resolution (a quarter of the crop size), smoothly upsampled.

MARK_ORDER = ("red", "green", "blue")  # keypoint k sits on the mark of colour MARK_ORDER[k % 3]
MARK_COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}
_BN_EPS_SAFE = 1.0 - 1e-5  # running_var that makes eval-mode batch norm (eps 1e-5) exactly the identity
_BINOMIAL3 = torch.tensor([1.0, 2.0, 1.0]) / 4


def tracking_config(mobile: bool = False, knots: int = 5) -> dict:
    """The vox structure sized for the tracking model: narrow keypoint and dense-motion hourglasses
    (only their heads matter) and a generator ``3 * knots`` channels wide at every level (the colours
    and their knots are all it carries). Fast on a CPU; the mobile blocks with ``mobile=True``."""
    config = tiny_config(mobile=mobile)
    width = 3 * int(knots)
    config["generator_params"].update(block_expansion=width, max_features=width, num_bottleneck_blocks=2)
    return config


def mark_weights(colour: str) -> torch.Tensor:
    """RGB weights whose dot product is 1 on the pure mark colour and 0 on any grey: colour - mean(others)."""
    rgb = torch.tensor(MARK_COLOURS[colour])
    return rgb - (1 - rgb) / 2


def _logit_knots(knots: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(thresholds t_i, slopes w_i, bias b) with ``sigmoid(b + sum_i w_i relu(x - t_i)) ~ x`` on [0, 1].

    Breakpoints are spaced densest near 0 and 1 (where the logit bends); the values at them are a
    least-squares fit of the logit weighted by the output error it causes (a few reweighting rounds
    push toward the smallest worst-case error). 5 knots: within ~3 levels of 255; 8: ~1.5.
    """
    xs = np.linspace(0.0, 1.0, 2001)
    clipped = np.clip(xs, 1e-3, 1 - 1e-3)
    target = np.log(clipped / (1 - clipped))
    best = None
    for steep in np.linspace(0.5, 8.0, 16):
        s = 1 / (1 + np.exp(-steep * np.linspace(-1.0, 1.0, knots + 1)))
        breaks = (s - s[0]) / (s[-1] - s[0])
        basis = np.stack([np.interp(xs, breaks, row) for row in np.eye(knots + 1)], axis=1)
        weight = np.maximum(xs * (1 - xs), 2e-3)
        for _ in range(20):
            values = np.linalg.lstsq(basis * weight[:, None], target * weight, rcond=None)[0]
            error = np.abs(1 / (1 + np.exp(-(basis @ values))) - xs)
            weight = weight * (1 + 5 * error / error.max())
        if best is None or error.max() < best[0]:
            best = (error.max(), breaks, values)
    _, breaks, values = best
    slopes = np.diff(values) / np.diff(breaks)
    w = np.concatenate([[slopes[0]], np.diff(slopes)])
    return torch.tensor(breaks[:-1], dtype=torch.float32), torch.tensor(w, dtype=torch.float32), float(values[0])


def _zero_(module: torch.nn.Module) -> None:
    """Every weight zero and every batch norm the identity; anti-alias kernels are left as built."""
    for name, p in module.state_dict().items():
        if not p.is_floating_point() or name.endswith("down.weight"):
            continue
        if name.endswith("running_var"):
            p.fill_(_BN_EPS_SAFE)
        elif name.endswith("weight") and p.dim() == 1:
            p.fill_(1.0)
        else:
            p.zero_()


def _taps(conv: torch.nn.Conv2d, kernel: torch.Tensor | None) -> torch.Tensor:
    """A kernel for ``conv``: ``kernel`` (1-D smoothing taps, used in both directions) centred in it
    when it fits, else a centre tap."""
    kh, kw = conv.kernel_size
    taps = torch.zeros(kh, kw)
    if kernel is not None and kh >= len(kernel):
        k = len(kernel)
        top, left = (kh - k) // 2, (kw - k) // 2
        taps[top : top + k, left : left + k] = torch.outer(kernel, kernel)
    else:
        taps[kh // 2, kw // 2] = 1.0
    return taps


def _pass_channels(conv: torch.nn.Conv2d, channels, kernel: torch.Tensor | None = None, targets=None) -> None:
    """Make ``conv`` copy input channel ``channels[i]`` to output ``targets[i]`` (default: the same)."""
    taps = _taps(conv, kernel)
    for src, dst in zip(channels, targets if targets is not None else channels, strict=True):
        if conv.groups == 1:
            conv.weight[dst, src] = taps
        else:  # depthwise: output channel dst reads input channel dst
            conv.weight[dst, 0] = taps


def _head_convs(head) -> list[torch.nn.Conv2d]:
    """The convolutions of a head: one conv, or PaddleGAN's mobile three-conv Sequential."""
    if isinstance(head, torch.nn.Sequential):
        return [m for m in head if isinstance(m, torch.nn.Conv2d)]
    return [head]


def _set_head(head, reads, last_weight: torch.Tensor, last_bias: torch.Tensor,
              blur: torch.Tensor | None = None) -> None:
    """The first convs of a head copy channels ``reads`` (smoothed by ``blur``); the last one maps
    them to its outputs with ``last_weight`` [out, len(reads)] times ``blur``, plus ``last_bias``."""
    convs = _head_convs(head)
    for conv in convs[:-1]:
        _pass_channels(conv, reads, blur)
    last = convs[-1]
    taps = _taps(last, blur)
    for o in range(last.out_channels):
        for i, src in enumerate(reads):
            last.weight[o, src] = last_weight[o, i] * taps
    last.bias.copy_(last_bias)


def _composed_blur(head) -> torch.Tensor:
    """One 1-D binomial per head conv, so a 1-conv 7x7 head and a 3x(3x3) mobile head blur alike."""
    convs = _head_convs(head)
    if len(convs) == 1:
        taps = _BINOMIAL3
        for _ in range((convs[0].kernel_size[0] - 3) // 2):
            taps = torch.from_numpy(np.convolve(taps.numpy(), _BINOMIAL3.numpy())).float()
        return taps
    return _BINOMIAL3


def _set_keypoint_detector(kp_detector, sharpness: float) -> None:
    num_kp = _head_convs(kp_detector.kp)[-1].out_channels
    raw = list(range(kp_detector.predictor.out_filters - 3, kp_detector.predictor.out_filters))
    contrast = torch.stack([mark_weights(MARK_ORDER[k % 3]) for k in range(num_kp)]) * sharpness
    _set_head(kp_detector.kp, raw, contrast, torch.zeros(num_kp), _composed_blur(kp_detector.kp))
    if kp_detector.jacobian is not None:
        last = _head_convs(kp_detector.jacobian)[-1]
        last.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(last.out_channels // 4))


def _heatmap_size(kp_detector, image_size: int) -> tuple[int, int]:
    """(side of the frame the keypoint hourglass sees, side of its heatmap) at ``image_size``."""
    with torch.no_grad():
        x = torch.zeros(1, 3, image_size, image_size)
        if kp_detector.scale_factor != 1:
            x = kp_detector.down(x)
        features = kp_detector.predictor(x.to(next(kp_detector.predictor.parameters()).dtype))
        return x.shape[-1], kp_detector.kp(features).shape[-1]


def _follow_share(kp_detector, generator, image_size: int) -> float:
    """The red keypoint's share of every pixel's motion that makes the warp move a mark exactly as far
    as the driving mark moved.

    Heatmap cell ``i`` of ``m`` (valid convolutions shrink the ``n``-pixel input) is placed at
    ``2i/(m-1) - 1`` although it looks at frame pixel ``(i + (n-m)/2) / f``: keypoint distances come out
    ``f (S-1)/(m-1)`` times the true ones. The warp grid on the encoder's features (``S / 2^D`` cells,
    each the mean of a ``2^D`` block) turns a grid shift into ``(S - 2^D)/(S-1)`` of it in the frame.
    """
    n, m = _heatmap_size(kp_detector, image_size)
    f = n / image_size
    block = 2 ** len(generator.down_blocks)
    return (m - 1) / (f * (image_size - block))


def _set_dense_motion(dense_motion, share: float) -> None:
    k1 = dense_motion.num_kp + 1
    logits = torch.full((k1,), -30.0)
    logits[0], logits[1] = float(np.log(1 - share)), float(np.log(share))
    _head_convs(dense_motion.mask)[-1].bias.copy_(logits)
    if dense_motion.occlusion is not None:
        _head_convs(dense_motion.occlusion)[-1].bias.fill_(30.0)  # sigmoid(30) = 1 - 1e-13


def _block_convs(block) -> list[torch.nn.Conv2d]:
    """The convolutions a down/up block applies one after the other (mobile: depthwise then pointwise)."""
    return [c for c in (getattr(block, "conv", None), getattr(block, "conv1", None)) if c is not None]


def _set_generator(generator, knots: int) -> None:
    rgb = [0, 1, 2]
    first = list(generator.first) if isinstance(generator.first, torch.nn.Sequential) else [generator.first]
    for block in first:
        _pass_channels(block.conv, rgb)
    for block in generator.down_blocks:
        for conv in _block_convs(block):
            _pass_channels(conv, rgb)
    for block in generator.up_blocks[:-1]:
        for j, conv in enumerate(_block_convs(block)):
            _pass_channels(conv, rgb, _BINOMIAL3 if j == 0 else None)
    # bottleneck residual blocks add zero (their last conv is zero): the identity
    thresholds, slopes, bias = _logit_knots(knots)
    last = generator.up_blocks[-1]
    convs = _block_convs(last)
    spread = [c * knots + i for c in rgb for i in range(knots)]
    sources = [c for c in rgb for _ in range(knots)]
    if len(convs) == 2:  # mobile: depthwise smoothing, then the pointwise conv spreads the knots
        _pass_channels(convs[0], rgb, _BINOMIAL3)
        _pass_channels(convs[1], sources, None, spread)
        norm = last.norm1
    else:
        _pass_channels(convs[0], sources, _BINOMIAL3, spread)
        norm = last.norm
    norm.bias[spread] = -thresholds.repeat(3)
    final = torch.zeros(3, len(spread))
    for c in rgb:
        final[c, c * knots : (c + 1) * knots] = slopes
    _set_head(generator.final, spread, final, torch.full((3,), bias))


def tracking_model(config: dict | None = None, *, mobile: bool = False, image_size: int = 256,
                   sharpness: float = 3.0, device: str = "cpu", precision: str = "fp32", origin: str = "fomm",
                   warp_border: str = "auto") -> FOMModel:
    """A FOMModel with constructed weights that makes motion visible and measurable.

    Keypoint ``k`` sits on the mark of colour ``MARK_ORDER[k % 3]`` (red, green, blue; draw them with
    :func:`draw_mark`), jacobians are the identity, and every pixel of the source crop moves with the
    red keypoint: a red mark on a source face follows the driving clip's red mark one for one in crop
    coordinates (``relative``: by the driver's displacement from the reference frame, times the hull
    ratio of the three marks with ``adapt_scale``; absolute: onto the driver's mark). The output is the
    warped crop itself (colours within a few levels, detail at a quarter of the crop size).

    config: network structure (``tracking_config(mobile)`` by default; any vox-like config works, e.g.
        ``full_config("vox-256")`` or ``tiny_config()``; the generator's last level needs at least 3
        channels per colour for good colours, 3 * 5 gives ~3 levels of 255).
    mobile: PaddleGAN's mobile blocks (when ``config`` is None).
    image_size: the crop size the follow share is computed for (the motion is exact at this size).
    sharpness: scale of the colour logits before the detector's temperature (higher = the mark wins
        over more of the picture, lower = smoother sub-pixel estimates).
    device, precision, origin, warp_border: as for :class:`FOMModel` (``origin="paddlegan"`` makes
        ``warp_border="auto"`` mean PaddleGAN's borders).
    Save it with ``model.save(path)`` (.safetensors) or :func:`write_model_pdparams` (.pdparams).
    """
    config = copy.deepcopy(config) if config is not None else tracking_config(mobile)
    generator, kp_detector = build_networks(config)
    width = _block_convs(generator.up_blocks[-1])[-1].out_channels
    knots = width // 3
    if knots < 1:
        raise ValueError(f"the generator's last level has {width} channels; the tracking model needs 3 or more")
    if config["common_params"]["num_channels"] != 3:
        raise ValueError("the tracking model reads RGB marks; the config must have 3 channels")
    with torch.no_grad():
        _zero_(generator)
        _zero_(kp_detector)
        if getattr(kp_detector, "down", None) is not None and kp_detector.down.weight.shape[-1] == 3:
            # the mobile 3x3 anti-alias kernel (sigma 0.25) barely blurs before taking every 4th pixel:
            # a wider 3x3 keeps small marks from flickering between samples
            kp_detector.down.weight.copy_(torch.outer(_BINOMIAL3, _BINOMIAL3).expand_as(kp_detector.down.weight))
        _set_keypoint_detector(kp_detector, sharpness)
        _set_generator(generator, knots)
        _set_dense_motion(generator.dense_motion_network, _follow_share(kp_detector, generator, image_size))
    return FOMModel(generator, kp_detector, config, origin, image_size, device, precision, warp_border)


def draw_mark(image: np.ndarray, centre, colour: str = "red", radius: float = 10.0, samples: int = 8) -> np.ndarray:
    """Paint an anti-aliased disc of a mark colour onto float RGB ``image`` [H, W, 3] in [0, 1], in place.

    ``centre`` (x, y) is in pixels, pixel ``(x, y)`` covering ``[x - 0.5, x + 0.5]``; edge pixels are
    blended by the share of ``samples`` x ``samples`` sub-pixel points inside, so the mark's centroid
    follows sub-pixel centres.
    """
    x, y = float(centre[0]), float(centre[1])
    h, w = image.shape[:2]
    x0, x1 = max(0, int(np.floor(x - radius - 1))), min(w, int(np.ceil(x + radius + 2)))
    y0, y1 = max(0, int(np.floor(y - radius - 1))), min(h, int(np.ceil(y + radius + 2)))
    if x0 >= x1 or y0 >= y1:
        return image
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    gx = (np.arange(x0, x1)[:, None] + offsets[None]).reshape(-1)
    gy = (np.arange(y0, y1)[:, None] + offsets[None]).reshape(-1)
    inside = ((gx[None, :] - x) ** 2 + (gy[:, None] - y) ** 2) <= radius**2
    cover = inside.reshape(y1 - y0, samples, x1 - x0, samples).mean(axis=(1, 3))[..., None]
    patch = image[y0:y1, x0:x1]
    patch[:] = patch * (1 - cover) + np.asarray(MARK_COLOURS[colour], dtype=image.dtype) * cover
    return image


def find_mark(image: np.ndarray, colour: str = "red", region=None, threshold: float = 0.3) -> tuple[float, float] | None:
    """Centroid (x, y) in pixels of a mark colour in RGB ``image`` [H, W, 3] (float in [0, 1] or uint8).

    Each pixel weighs by how far its :func:`mark_weights` contrast (1 on the pure colour, 0 on greys)
    exceeds ``threshold``, so a blurred or codec-softened disc still gives its centre. ``region``: a
    boolean mask [H, W] or a box (x1, y1, x2, y2) to look in. None when no pixel qualifies.
    """
    rgb = np.asarray(image, dtype=np.float32)
    if np.asarray(image).dtype == np.uint8:
        rgb = rgb / 255.0
    contrast = rgb @ mark_weights(colour).numpy()
    weight = np.clip(contrast - threshold, 0, None)
    if region is not None:
        region = np.asarray(region)
        if region.dtype == bool:
            weight = weight * region
        else:
            x1, y1, x2, y2 = (int(round(v)) for v in region)
            box = np.zeros(weight.shape, bool)
            box[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = True
            weight = weight * box
    total = float(weight.sum())
    if total <= 0:
        return None
    ys, xs = np.indices(weight.shape)
    return float((weight * xs).sum() / total), float((weight * ys).sum() / total)


# Where the three marks sit on a test face, in the coordinates of its 256 px crop (mouth, left eye,
# right eye); any layout works as long as the marks do not overlap.
FACE_MARKS = {"red": (128.0, 172.0), "green": (100.0, 112.0), "blue": (156.0, 112.0)}
MARK_RADIUS = 12.0  # in crop pixels: 3 pixels where the keypoint detector looks (a quarter of the crop)


def draw_marked_face(image: np.ndarray, window, marks: dict | None = None, radius: float = MARK_RADIUS,
                     crop: int = 256) -> np.ndarray:
    """Draw a grey test face with coloured marks into float RGB ``image`` [H, W, 3], in place.

    ``window`` (x1, y1, x2, y2) is the square the face's crop will be cut from; ``marks`` maps mark
    colours to centres and ``radius`` is their size, both in the coordinates of that crop resized to
    ``crop`` pixels (default :data:`FACE_MARKS`). Everything but the marks is grey (R = G = B), so the
    tracking model's keypoints see only the marks.
    """
    x1, y1, x2, y2 = (float(v) for v in window)
    scale = (x2 - x1) / crop

    def at(u: float, v: float) -> tuple[float, float]:  # crop pixel centre -> image pixel centre
        return x1 + (u + 0.5) * scale - 0.5, y1 + (v + 0.5) * scale - 0.5

    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for (u, v), (ru, rv), grey in (((128, 60), (78, 40), 0.28), ((128, 132), (70, 88), 0.72),
                                   ((100, 112), (20, 14), 0.45), ((156, 112), (20, 14), 0.45),
                                   ((128, 142), (8, 16), 0.6)):
        cx, cy = at(u, v)
        inside = ((xs - cx) / (ru * scale)) ** 2 + ((ys - cy) / (rv * scale)) ** 2 <= 1
        image[inside] = grey
    for colour, (u, v) in (marks or FACE_MARKS).items():
        draw_mark(image, at(u, v), colour, radius * scale)
    return image


def marked_face(size: int = 256, marks: dict | None = None, radius: float = MARK_RADIUS,
                background: float = 0.5) -> np.ndarray:
    """A ``size`` x ``size`` float RGB frame filled by one test face (:func:`draw_marked_face`; marks in
    256 px crop coordinates): a driving frame or a single-face photo for the tracking model."""
    image = np.full((size, size, 3), background, np.float32)
    return draw_marked_face(image, (0, 0, size, size), marks, radius)


def write_clip(path: str | os.PathLike, frames, fps: float = 25.0, crf: int = 12) -> None:
    """Encode float RGB frames [T, H, W, 3] in [0, 1] (or an iterable of them) as h264 yuv420p with the
    ffmpeg binary imageio-ffmpeg ships: a driving clip as a camera would deliver it."""
    import subprocess

    import imageio_ffmpeg

    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
           "-crf", str(crf), "-pix_fmt", "yuv420p", os.fspath(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    for frame in itertools.chain([first], frames):
        proc.stdin.write(np.clip(np.asarray(frame) * 255 + 0.5, 0, 255).astype(np.uint8).tobytes())
    proc.stdin.close()
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg could not write {path}: {err.strip()}")
