"""``fom-animate convert IN OUT.safetensors``: a checkpoint rewritten in our safetensors layout."""

from __future__ import annotations

from pathlib import Path

from ..atomic import check_target
from ..errors import InputError
from .args import build_convert_parser


def run_convert(argv: list[str]) -> int:
    args = build_convert_parser().parse_args(argv)
    from .. import checkpoints

    src, dst = Path(args.input), Path(args.output)
    if not src.is_file():
        raise InputError(f"checkpoint not found: {src} (check the path)")
    if dst.exists() and not args.overwrite:
        raise InputError(f"output file already exists: {dst} (pass --overwrite to replace it)")
    if dst.suffix != ".safetensors":
        raise InputError(f"the output must be a .safetensors file, e.g. {dst.with_suffix('.safetensors')}")
    check_target(dst, args.overwrite)
    checkpoints.convert(src, dst, overwrite=args.overwrite)
    print(f"wrote {dst}")
    return 0
