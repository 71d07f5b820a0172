"""Model configs in the original ``model_params`` form, inferred from a checkpoint's tensors.

Width caps (``max_features``) that never bind cannot be read off the tensors; when the inferred
structure is one of the released models, the release's own config is reported instead.
"""

from __future__ import annotations

import copy
import re

RELEASE_CONFIGS = {
    "vox-256": {
        "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024,
                               "scale_factor": 0.25, "num_blocks": 5},
        "generator_params": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
                             "num_bottleneck_blocks": 6, "estimate_occlusion_map": True,
                             "dense_motion_params": {"block_expansion": 64, "max_features": 1024,
                                                     "num_blocks": 5, "scale_factor": 0.25}},
    },
    "vox-mobile-256": {
        "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": {"temperature": 0.1, "block_expansion": 32, "max_features": 256,
                               "scale_factor": 0.25, "num_blocks": 5, "mobile_net": True},
        "generator_params": {"block_expansion": 32, "max_features": 256, "num_down_blocks": 2,
                             "num_bottleneck_blocks": 6, "estimate_occlusion_map": True,
                             "dense_motion_params": {"block_expansion": 32, "max_features": 256,
                                                     "num_blocks": 5, "scale_factor": 0.25},
                             "mobile_net": True},
    },
}


# The released mgif model is the vox architecture with one jacobian map shared by all keypoints.
RELEASE_CONFIGS["mgif-256"] = copy.deepcopy(RELEASE_CONFIGS["vox-256"])
RELEASE_CONFIGS["mgif-256"]["kp_detector_params"]["single_jacobian_map"] = True


def _count(keys, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := rx.match(k))})


def _scale_from_kernel(size: int) -> float:
    """Invert the release's kernel-size formula (size = 2*round(4*sigma)+1, sigma = (1/s-1)/2)."""
    for inv in (2, 3, 4, 5, 6, 8, 16):
        sigma = (inv - 1) / 2
        if 2 * round(sigma * 4) + 1 == size:
            return 1 / inv
    raise ValueError(f"anti-alias kernel of size {size} matches no scale factor")


def _hourglass(sd: dict, prefix: str, mobile: bool) -> tuple[int, int, int]:
    """(in_features, num_blocks, widest encoder output) of an hourglass."""
    keys = list(sd)
    num_blocks = _count(keys, re.escape(prefix) + r"encoder\.down_blocks\.(\d+)\.")
    first = sd[f"{prefix}encoder.down_blocks.0.conv.weight"]
    in_features = first.shape[0] if mobile else first.shape[1]
    out_key = "conv1" if mobile else "conv"
    widest = max(sd[f"{prefix}encoder.down_blocks.{i}.{out_key}.weight"].shape[0] for i in range(num_blocks))
    return in_features, num_blocks, widest


def _down_scale(sd: dict, key: str, mobile: bool, default: float) -> float:
    if key not in sd:
        return 1
    return default if mobile else _scale_from_kernel(sd[key].shape[-1])


def infer_config(generator: dict, kp_detector: dict) -> dict:
    """Model params (original yaml form) from the two state dicts; raises ValueError if unreadable."""
    kp_mobile = "kp.0.weight" in kp_detector
    kp_head = kp_detector["kp.2.weight" if kp_mobile else "kp.weight"]
    num_kp = kp_head.shape[0]
    num_channels, kp_blocks, kp_widest = _hourglass(kp_detector, "predictor.", kp_mobile)
    jac_key = "jacobian.2.weight" if kp_mobile else "jacobian.weight"
    estimate_jacobian = jac_key in kp_detector
    kp_params = {
        "temperature": 0.1,
        "block_expansion": kp_head.shape[1] - num_channels,
        "max_features": kp_widest,
        "scale_factor": _down_scale(kp_detector, "down.weight", kp_mobile, 0.25),
        "num_blocks": kp_blocks,
    }
    if estimate_jacobian and kp_detector[jac_key].shape[0] == 4 and num_kp != 1:
        kp_params["single_jacobian_map"] = True
    if kp_mobile:
        kp_params["mobile_net"] = True

    gen_mobile = "first.0.conv.weight" in generator
    gen_be = generator["first.2.conv.weight" if gen_mobile else "first.conv.weight"].shape[0]
    num_down = _count(generator, r"down_blocks\.(\d+)\.")
    num_bottleneck = _count(generator, r"bottleneck\.r(\d+)\.")
    bottleneck_width = generator[f"bottleneck.r0.{'conv_pw_linear' if gen_mobile else 'conv1'}.weight"].shape[0]
    dm = "dense_motion_network."
    dm_in, dm_blocks, dm_widest = _hourglass(generator, dm + "hourglass.", gen_mobile)
    mask_in = generator[dm + ("mask.0.weight" if gen_mobile else "mask.weight")].shape[1]
    gen_params = {
        "block_expansion": gen_be,
        "max_features": bottleneck_width,
        "num_down_blocks": num_down,
        "num_bottleneck_blocks": num_bottleneck,
        "estimate_occlusion_map": any(k.startswith(dm + "occlusion") for k in generator),
        "dense_motion_params": {
            "block_expansion": mask_in - dm_in,
            "max_features": dm_widest,
            "num_blocks": dm_blocks,
            "scale_factor": _down_scale(generator, dm + "down.weight", gen_mobile, 0.25),
        },
    }
    if gen_mobile:
        gen_params["mobile_net"] = True
    if dm_in != (num_kp + 1) * (num_channels + 1):
        raise ValueError(f"dense motion input has {dm_in} channels, expected (num_kp+1)*(channels+1)")
    config = {
        "common_params": {"num_kp": num_kp, "num_channels": num_channels, "estimate_jacobian": estimate_jacobian},
        "kp_detector_params": kp_params,
        "generator_params": gen_params,
    }
    return match_release(config)


def _structure(config: dict) -> dict:
    """The config with width caps replaced by the widths they produce (what tensors can show)."""
    c = copy.deepcopy(config)
    kp = c["kp_detector_params"]
    kp["max_features"] = min(kp["max_features"], kp["block_expansion"] * 2 ** kp["num_blocks"])
    kp["temperature"] = None
    g = c["generator_params"]
    g["max_features"] = min(g["max_features"], g["block_expansion"] * 2 ** g["num_down_blocks"])
    d = g["dense_motion_params"]
    d["max_features"] = min(d["max_features"], d["block_expansion"] * 2 ** d["num_blocks"])
    return c


def match_release(config: dict) -> dict:
    """Swap in a released model's config when the structure is the same (it states the true caps)."""
    shape = _structure(config)
    for release in RELEASE_CONFIGS.values():
        if _structure(release) == shape:
            return copy.deepcopy(release)
    return config


# What a FOMM config may say. The released models stay far inside these; the limits keep a damaged
# or hostile stored config from asking for networks that would not fit in memory (widths), loops
# without end (block counts) or giant anti-alias kernels (scale factors) before any tensor is read.
MAX_WIDTH = 8192
_INT_LIMITS = {
    "num_kp": (1, 256), "num_channels": (1, 4), "block_expansion": (1, MAX_WIDTH), "max_features": (1, MAX_WIDTH),
    "num_blocks": (1, 8), "num_down_blocks": (1, 8), "num_bottleneck_blocks": (0, 64), "pad": (0, 8),
}
_FLOAT_LIMITS = {"scale_factor": (1 / 16, 1.0), "temperature": (1e-6, 1e6), "kp_variance": (1e-6, 1e6)}
_FLAGS = {"estimate_jacobian", "estimate_occlusion_map", "single_jacobian_map", "mobile_net"}
_SECTIONS = ("common_params", "kp_detector_params", "generator_params")


def _check_value(where: str, value) -> None:
    name = where.rsplit(".", 1)[-1]
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise ValueError(f"{where} is {value!r}; expected true or false")
        return
    limits = _INT_LIMITS.get(name) or _FLOAT_LIMITS.get(name)
    if limits is None:
        raise ValueError(f"{where} is not a FOMM model setting")
    lo, hi = limits
    whole = name in _INT_LIMITS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and value != int(value)):
        raise ValueError(f"{where} is {value!r}; expected {'a whole number' if whole else 'a number'}")
    if not lo <= value <= hi:
        raise ValueError(f"{where} {value!r} is out of range ({lo:g} to {hi:g})")


def check_config(config) -> dict:
    """``config`` if it is a FOMM ``model_params`` mapping whose every network setting is known and in
    range, else a ValueError naming the first that is not (other sections, such as a training file's
    ``discriminator_params``, are never read). Nothing is built: this bounds what building costs."""
    if not isinstance(config, dict):
        raise ValueError(f"it is {type(config).__name__}, not an object of model settings")
    missing = [name for name in _SECTIONS if not isinstance(config.get(name), dict)]
    if missing:
        raise ValueError(f"'{missing[0]}' is missing or not an object")
    for section in _SECTIONS:
        for name, value in config[section].items():
            if section == "generator_params" and name == "dense_motion_params":
                if not isinstance(value, dict):
                    raise ValueError("generator_params.dense_motion_params is not an object")
                for inner, inner_value in value.items():
                    _check_value(f"{section}.{name}.{inner}", inner_value)
            else:
                _check_value(f"{section}.{name}", value)
    return config
