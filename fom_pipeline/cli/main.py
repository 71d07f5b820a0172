"""The console entry: flags in, one summary line or one error line out, an exit status."""

from __future__ import annotations

import logging
import signal
import sys

from ..errors import FOMError
from .args import parse_args
from .convert import run_convert
from .run import run


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("fom_pipeline")
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR if quiet else logging.WARNING)
    root.propagate = False


def _on_sigterm(signum, frame):  # turn a polite kill into the same clean stop as Ctrl-C
    raise KeyboardInterrupt


def _one_line(err: BaseException) -> str:
    text = " ".join((err.worded("cli") if isinstance(err, FOMError) else str(err)).split())  # the CLI's advice
    return text or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Console entry: returns the exit status (0 ok, 1 error, 2 bad flags, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (e.g. called from a test runner thread)
        pass
    try:
        if argv and argv[0] == "convert":
            _setup_logging(False)
            return run_convert(argv[1:])
        args = parse_args(argv)
        _setup_logging(args.quiet)
        summary = run(args)
        print(summary.line(), flush=True)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopped cleanly, no output written", file=sys.stderr, flush=True)
        return 130
    except FOMError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr, flush=True)
        return 1
    except MemoryError:
        print("error: out of memory; lower --batch_size or use a shorter clip", file=sys.stderr, flush=True)
        return 1
    except OSError as err:  # disk full, permission denied while writing, ...
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        print(f"error: {err.strerror or _one_line(err)}{where}", file=sys.stderr, flush=True)
        return 1
    except RuntimeError as err:
        if "out of memory" in str(err).lower():
            print("error: out of GPU memory; lower --batch_size or use --precision fp16", file=sys.stderr)
            return 1
        raise
