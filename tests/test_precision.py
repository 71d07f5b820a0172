"""precision="auto": bf16 only on CPUs that compute it natively, the host's or torch's choice on GPUs,
a one-line warning when bf16 is forced where it is emulated, and the choice visible in the model and
the command line. CPU capabilities are faked (no AVX2-only machine is at hand); one test checks the
real detection on this machine."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kit import REPO

import fom_pipeline as fp
from fom_pipeline import precision as P

CPU = torch.device("cpu")
# /proc/cpuinfo flag lines of three kinds of CPU (abridged)
ZEN3 = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2 sha_ni vaes"
SKYLAKE_X = ZEN3 + " avx512f avx512dq avx512bw avx512vl avx512_vnni"
COOPER_LAKE = SKYLAKE_X + " avx512_bf16"
SAPPHIRE_RAPIDS = COOPER_LAKE + " amx_bf16 amx_tile amx_int8 avx512_fp16"


@pytest.fixture
def fake_cpu(monkeypatch, tmp_path):
    """fake_cpu(flags, torch_probe=False, onednn=True): this CPU as the precision choice sees it."""

    def fake(flags: str, torch_probe: bool = False, onednn: bool = True) -> None:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: x\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        monkeypatch.setattr(P, "cpu_flags", lambda: real_cpu_flags(cpuinfo))
        monkeypatch.setattr(P, "torch_sees_native_bf16", lambda: torch_probe)
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: onednn)

    real_cpu_flags = P.cpu_flags  # the real parser, reading the fake file
    return fake


@pytest.mark.parametrize(("flags", "torch_probe", "onednn", "expected"), [
    (ZEN3, False, True, "fp32"),  # AVX2 only: bf16 is emulated, 6x slower than fp32
    (SKYLAKE_X, False, True, "fp32"),  # AVX-512 without its BF16 extension
    (COOPER_LAKE, False, True, "bf16"),  # AVX-512 BF16
    (SAPPHIRE_RAPIDS, False, True, "bf16"),  # AMX
    ("", True, True, "bf16"),  # no /proc/cpuinfo (Windows, macOS): torch's own probe decides
    (SAPPHIRE_RAPIDS, True, False, "fp32"),  # torch built without oneDNN: no fast bf16 kernels
])
def test_auto_on_a_cpu_is_bf16_only_where_it_is_native(fake_cpu, flags, torch_probe, onednn, expected, caplog):
    fake_cpu(flags, torch_probe, onednn)
    with caplog.at_level(logging.WARNING, logger="fom_pipeline"):
        choice = P.choose_precision("auto", CPU)
    assert choice.precision == expected
    assert choice.reason.startswith("auto: this CPU has") and ("no native" in choice.reason) == (expected == "fp32")
    assert not caplog.records  # auto never warns


def test_forcing_bf16_on_an_emulating_cpu_warns_in_one_line(fake_cpu, caplog):
    fake_cpu(ZEN3)
    with caplog.at_level(logging.WARNING, logger="fom_pipeline"):
        assert P.choose_precision("bf16", CPU).precision == "bf16"  # the user's choice is kept
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "\n" not in record.getMessage()
    assert "slower than fp32" in record.getMessage() and "auto or fp32" in record.getMessage()


@pytest.mark.parametrize(("flags", "precision"), [(COOPER_LAKE, "bf16"), (ZEN3, "fp32"), (ZEN3, "auto")])
def test_no_warning_where_the_choice_is_fast(fake_cpu, caplog, flags, precision):
    fake_cpu(flags)
    with caplog.at_level(logging.WARNING, logger="fom_pipeline"):
        P.choose_precision(precision, CPU)
    assert not caplog.records


def test_cpu_flags_are_read_from_x86_and_arm_cpuinfo(tmp_path):
    x86, arm, other = tmp_path / "x86", tmp_path / "arm", tmp_path / "other"
    x86.write_text(f"processor\t: 0\nmodel name\t: Xeon\nflags\t\t: {SAPPHIRE_RAPIDS}\n")
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 sve\nCPU implementer\t: 0x41\n")
    other.write_text("processor\t: 0\n")
    assert {"amx_bf16", "avx512_bf16", "avx2"} <= P.cpu_flags(x86)
    assert "bf16" in P.cpu_flags(arm)
    assert P.cpu_flags(other) == frozenset() == P.cpu_flags(tmp_path / "missing")


def test_a_gpu_runs_what_the_host_says(monkeypatch):
    asked = []

    def host(device: torch.device) -> str:
        asked.append(device)
        return "fp16"

    choice = P.choose_precision("auto", torch.device("cuda", 1), host)
    assert (choice.precision, asked) == ("fp16", [torch.device("cuda", 1)])
    assert "host" in choice.reason
    assert P.choose_precision("fp32", torch.device("cuda"), host).precision == "fp32"  # asked for: kept
    with pytest.raises(fp.InputError, match="'int8'"):
        P.choose_precision("auto", torch.device("cuda"), lambda device: "int8")


@pytest.mark.parametrize(("bf16", "major", "expected"), [(True, 9, "bf16"), (False, 7, "fp16"), (False, 6, "fp32")])
def test_a_gpu_outside_a_host_runs_what_torch_reports(monkeypatch, bf16, major, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, 0))
    choice = P.choose_precision("auto", torch.device("cuda"))
    assert choice.precision == expected and "torch" in choice.reason
    assert P.choose_precision("auto", torch.device("mps")).precision == "fp16"


def test_auto_resolves_on_this_machine_and_the_model_runs(tiny_checkpoint):
    """The real detection: /proc/cpuinfo and torch's probe agree, and load_model's default follows them."""
    native = P.cpu_has_native_bf16()
    if Path("/proc/cpuinfo").exists():
        assert P.torch_sees_native_bf16() == any(f in P.cpu_flags() for f in P.NATIVE_BF16_FLAGS)
    model = fp.load_model(tiny_checkpoint)  # precision="auto" is the default
    assert model.precision == ("bf16" if native else "fp32") and model.precision_reason.startswith("auto")
    assert model.dtype == P.PRECISIONS[model.precision]
    assert {p.dtype for p in model.inference.generator.up_blocks.parameters()} == {model.dtype}
    source = torch.rand(1, 256, 256, 3)
    frames = model.animate(source, model.extract_keypoints(source.repeat(2, 1, 1, 1)))
    assert frames.shape == (2, 256, 256, 3) and frames.dtype == torch.float32
    assert torch.isfinite(frames).all() and 0 <= frames.min() and frames.max() <= 1 and frames.std() > 0.01


def test_unknown_precision_is_refused_naming_the_choices(tiny_checkpoint):
    with pytest.raises(fp.InputError, match="use one of auto, fp32, bf16, fp16"):
        fp.load_model(tiny_checkpoint, precision="fp64")


def _cli_on_a_faked_cpu(native: bool, *args) -> subprocess.CompletedProcess:
    """The real command line with the CPU's native bf16 faked (set before the CLI runs)."""
    code = ("import sys; import fom_pipeline.precision as p; "
            f"p.cpu_has_native_bf16 = lambda: {native}; "
            "from fom_pipeline.cli import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "FOM_ALLOW_DOWNLOAD": "0"})


@pytest.mark.parametrize(("native", "precision", "shown", "warned"), [
    (True, "auto", "precision bf16 (auto: this CPU has native bf16", False),
    (False, "auto", "precision fp32 (auto: this CPU has no native bf16", False),
    (False, "bf16", "precision bf16 (asked for)", True),
])
def test_the_command_line_shows_the_precision_and_warns_when_bf16_is_emulated(
        tmp_path, media_dir, tiny_checkpoint, native, precision, shown, warned):
    res = _cli_on_a_faked_cpu(native, "--source_image", media_dir / "fom_source_image.png",
                              "--driving_video", media_dir / "fom_dv.mp4", "--weight_path", tiny_checkpoint,
                              "--faces", "48,40,208,216", "--max_frames", 2, "--precision", precision,
                              "--output", tmp_path, "--filename", "out.mp4", "--cpu")
    assert res.returncode == 0, res.stderr
    assert shown in res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == (1 if warned else 0), res.stderr
    assert all("precision bf16" in line and "slower than fp32" in line for line in warnings)
    assert (tmp_path / "out.mp4").is_file()
