"""Restoration models of real spandrel architectures with generated weights (nothing downloads here).

- ``restoreformer_state``: a face restorer (spandrel's RestoreFormer, purpose FaceSR). ``full=True``
  is the released RestoreFormer's size; the default is the same architecture made narrow and
  shallow (spandrel reads widths and depths from the tensors) so tests run in seconds on a CPU.
  Random weights: its output is a blurred grey face-sized blob, nothing like the input.
- ``gfpgan_state``: GFPGAN v1.4's architecture at its only size (about 80 M parameters).
- ``compact_state``: Real-ESRGAN Compact (a general restorer / upscaler) whose last layer is scaled
  down, so it returns its input (upscaled when ``scale`` > 1) plus a small random change: a
  restorer that keeps the motion, for checks that restoration keeps frames in step.

``write_state`` saves a state dict as .safetensors or .pth (both are what "Load Upscale Model" and
``--restore_model`` read).
"""

from __future__ import annotations

from pathlib import Path

import torch

SMALL_RESTOREFORMER = dict(n_embed=64, embed_dim=32, ch=32, ch_mult=(1, 1, 1, 1, 1, 1), num_res_blocks=1,
                           z_channels=32)
FULL_RESTOREFORMER = dict(n_embed=1024, embed_dim=256, ch=64, ch_mult=(1, 2, 2, 4, 4, 8), num_res_blocks=2,
                          z_channels=256)


def _seeded_state(build, seed: int) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build()
    return {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}


def restoreformer_state(seed: int = 0, full: bool = False) -> dict[str, torch.Tensor]:
    from spandrel.architectures.RestoreFormer import RestoreFormer

    size = FULL_RESTOREFORMER if full else SMALL_RESTOREFORMER
    return _seeded_state(lambda: RestoreFormer(out_ch=3, attn_resolutions=(16,), dropout=0.0, in_channels=3,
                                               resolution=512, double_z=False, enable_mid=True, head_size=8,
                                               **size), seed)


def gfpgan_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from spandrel.architectures.GFPGAN import GFPGAN

    return _seeded_state(lambda: GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2,
                                        decoder_load_path=None, fix_decoder=False, num_mlp=8,
                                        input_is_latent=True, different_w=True, narrow=1, sft_half=True), seed)


def compact_state(seed: int = 0, scale: int = 1, change: float = 0.05) -> dict[str, torch.Tensor]:
    from spandrel.architectures.Compact import Compact

    state = _seeded_state(lambda: Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=2, upscale=scale), seed)
    last = max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    state[f"body.{last}.weight"] *= change
    state[f"body.{last}.bias"] *= change
    return state


def write_state(path: Path, state: dict[str, torch.Tensor]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
