"""``fom-animate convert IN OUT.safetensors``: a checkpoint rewritten in our safetensors layout (every
check, the output's included, is the engine's: fom_pipeline.checkpoints.convert)."""

from __future__ import annotations

from .args import build_convert_parser


def run_convert(argv: list[str]) -> int:
    args = build_convert_parser().parse_args(argv)
    from .. import checkpoints

    dst = checkpoints.convert(args.input, args.output, overwrite=args.overwrite)
    print(f"wrote {dst}")
    return 0
