"""Which precision the networks run in: "auto" picks what the device runs fast.

On a CPU, bf16 is twice as fast as fp32 only where the CPU computes it natively (AVX-512 BF16 or
AMX); elsewhere (AVX2-only CPUs such as AMD Zen 3) oneDNN emulates it and it is about 6x slower than
fp32. On a GPU the host application knows best (ComfyUI's model management honours its own flags);
outside it, torch says whether the GPU has bf16, and fp16 is used on older tensor-core GPUs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InputError

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_CHOICES = ("auto", *PRECISIONS)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # as /proc/cpuinfo names them
# A front end's answer to "which precision runs well on this GPU/MPS device?" (fp32, bf16 or fp16).
AcceleratorPrecision = Callable[[torch.device], str]


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str
    reason: str

    def __str__(self) -> str:
        return f"{self.precision} ({self.reason})"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where there is no such file."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def torch_sees_native_bf16() -> bool:
    """torch's own CPU probe (works where there is no /proc/cpuinfo: Windows, macOS)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in probes:
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:
            continue
    return False


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware and torch's oneDNN kernels can use it."""
    if not torch.backends.mkldnn.is_available():
        return False
    return torch_sees_native_bf16() or any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def torch_accelerator_precision(device: torch.device) -> str:
    """Outside ComfyUI: bf16 where the GPU has it, fp16 on older tensor-core GPUs and on MPS, else fp32."""
    if device.type == "mps":
        return "fp16"
    if device.type != "cuda":
        return "fp32"
    try:
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch: no emulation argument
        native = torch.cuda.is_bf16_supported()
    if native:
        return "bf16"
    return "fp16" if torch.cuda.get_device_capability(device)[0] >= 7 else "fp32"


def check_precision(precision: str) -> None:
    """Refuse a precision that is not one of PRECISION_CHOICES, naming them."""
    if precision not in PRECISION_CHOICES:
        raise InputError(f"unknown precision '{precision}'; use one of {', '.join(PRECISION_CHOICES)}")


def choose_precision(precision: str, device: torch.device,
                     accelerator_precision: AcceleratorPrecision | None = None) -> PrecisionChoice:
    """The precision to run on ``device``: ``precision`` itself, or what "auto" stands for there.

    ``accelerator_precision`` lets the host application answer for GPU/MPS devices (ComfyUI's model
    management); without it torch is asked. Forcing bf16 on a CPU without native bf16 works but logs a
    one-line warning, since it runs several times slower than fp32.
    """
    check_precision(precision)
    if device.type == "cpu":
        native = cpu_has_native_bf16()
        if precision == "auto":
            if native:
                return PrecisionChoice("bf16", "auto: this CPU has native bf16 (AVX-512 BF16 / AMX)")
            return PrecisionChoice("fp32", "auto: this CPU has no native bf16 (AVX-512 BF16 / AMX)")
        if precision == "bf16" and not native:
            log.warning("precision bf16 on a CPU without native bf16 (AVX-512 BF16 / AMX) is emulated and runs "
                        "several times slower than fp32; use precision auto or fp32")
        return PrecisionChoice(precision, "asked for")
    if precision != "auto":
        return PrecisionChoice(precision, "asked for")
    if accelerator_precision is not None:
        chosen, who = accelerator_precision(device), "the host's choice"
    else:
        chosen, who = torch_accelerator_precision(device), "torch's report"
    if chosen not in PRECISIONS:
        raise InputError(f"the precision picked for {device} is '{chosen}'; expected one of {', '.join(PRECISIONS)}")
    return PrecisionChoice(chosen, f"auto: {who} for {device.type}")
