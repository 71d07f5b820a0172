"""The ``fom-animate`` / ``python -m fom_pipeline`` entry: ``batch`` goes to :mod:`fom_pipeline.batch`,
everything else (animate, ``convert``) to the single command, :mod:`fom_pipeline.cli`. Kept apart from
both so that the batch, which is built on the single command, is not imported by it."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Console entry: the chosen command's exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "batch":
        from .batch import main as batch_main

        return batch_main(argv[1:])
    from .cli import main as single_main

    return single_main(argv)
