"""The jobs file: rows read from CSV or JSON Lines, each turned into the single command's flags and
checked by the single command's own parser and ``Job`` checks, so a row fails in the same words.

A column is named like an animate flag without its dashes (``ratio``, ``faces``, ``relative``, ...);
an empty cell (or JSON null) leaves the flag to the batch's defaults. ``output`` is the result's file
(a folder too, as ``--output``, with ``filename``). Relative paths in the file are relative to the
file's own folder, so a jobs file and its media can move together (to a shared mount, say).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..cli.args import build_parser, parse_args
from ..cli.job import Job
from ..cli.main import one_line
from ..cli.run import resolve_weights
from ..errors import FOMError, InputError

PATH_COLUMNS = ("source_image", "source_video", "driving_video", "driving_motion", "output", "mask", "audio",
                "weight_path", "save_motion", "restore_model")
AUDIO_WORDS = ("source", "driving", "none")  # --audio's choices that are not a file
TRUE_WORDS = ("1", "true", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "no", "n", "off", "")
NOT_COLUMNS = ("help", "quiet", "overwrite")  # the batch's own choices, not a job's


@dataclass
class Row:
    """One job as read: its number (1 = the first job), where it is in the file, and its cells."""

    number: int
    line: int
    cells: dict


@dataclass
class CheckedJob:
    """A row after the check: ``args`` (the single command's, with the weights resolved) when it can run,
    ``error`` (one line) when not, ``done`` when its output is already there (skipped, kept)."""

    row: Row
    argv: list[str]
    args: argparse.Namespace | None = None
    output: Path | None = None
    error: str | None = None
    done: bool = False
    driver: tuple | None = None  # what its driving keypoints depend on (None: a motion file)

    @property
    def number(self) -> int:
        return self.row.number


def _options() -> dict[str, argparse.Action]:
    """Column name -> the animate parser's action for it."""
    found = {}
    for action in build_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and action.dest not in NOT_COLUMNS:
                found[flag[2:]] = action
    return found


def read_rows(path: Path) -> list[Row]:
    """The jobs of a .csv (header row first) or .jsonl/.ndjson file (one JSON object a line)."""
    if not path.is_file():
        raise InputError(f"jobs file not found: {path} (check the path)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"jobs file is not readable as UTF-8 text: {path} ({err})") from None
    rows = _jsonl_rows(path, text) if path.suffix.lower() in (".jsonl", ".ndjson") else _csv_rows(path, text)
    if not rows:
        raise InputError(f"jobs file has no jobs: {path} (a header row, then one row per job)")
    known = _options()
    for row in rows:
        unknown = [name for name in row.cells if name not in known]
        if unknown:
            raise InputError(f"{path} line {row.line}: unknown column {unknown[0]!r}; columns are the animate "
                             f"flags without dashes ({', '.join(sorted(known))})")
    return rows


def _csv_rows(path: Path, text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
    if not reader.fieldnames:
        return []
    rows = []
    for cells in reader:
        if None in cells:
            raise InputError(f"{path} line {reader.line_num}: more cells than the header has columns")
        clean = {(k or "").strip(): (v or "").strip() for k, v in cells.items()}
        if any(clean.values()):
            rows.append(Row(len(rows) + 1, reader.line_num, clean))
    return rows


def _jsonl_rows(path: Path, text: str) -> list[Row]:
    rows = []
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            cells = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path} line {line_number}: not JSON ({err.msg}); write one object a line") from None
        if not isinstance(cells, dict):
            raise InputError(f"{path} line {line_number}: expected a JSON object ({{\"column\": value, ...}})")
        rows.append(Row(len(rows) + 1, line_number, {str(k).strip(): v for k, v in cells.items()}))
    return rows


# ---------------------------------------------------------------------------------------------------
# rows -> the single command's flags


def defaults_from_flags(argv: list[str]) -> dict[str, object]:
    """The animate flags given to ``batch`` (every job's defaults) as column -> value; bad flags exit 2
    with the single command's words. Only flags that differ from the command's own defaults count."""
    parser = build_parser()
    parser.prog = "fom-animate batch"
    for action in parser._actions:
        action.required = False
    given, plain = vars(parser.parse_args(argv)), vars(parser.parse_args([]))
    by_dest = {action.dest: name for name, action in _options().items()}
    found = {by_dest[dest]: value for dest, value in given.items() if dest in by_dest and value != plain[dest]}
    for column in PATH_COLUMNS:  # absolute: workers elsewhere do not share this folder as theirs
        if _is_path(column, found.get(column)):
            found[column] = os.path.abspath(os.path.expanduser(found[column]))
    return found


def _is_path(column: str, value) -> bool:
    """Whether ``value`` in ``column`` names a file (``audio`` may be a word: source, driving, none)."""
    if column not in PATH_COLUMNS or not isinstance(value, str):
        return False
    return not (column == "audio" and value in AUDIO_WORDS)


def _cell_text(value) -> str | None:
    """A cell as the flag's text; None when empty (the default applies)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def _is_true(column: str, text: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InputError(f"column {column}: expected true or false, got {text!r}")


def row_argv(row: Row, defaults: dict[str, object], base: Path) -> list[str]:
    """The single command's argv for a row: the batch's defaults, each overridden by a non-empty cell."""
    options = _options()
    values: dict[str, object] = dict(defaults)
    for column, cell in row.cells.items():
        text = _cell_text(cell)
        if text is None:
            continue
        if _is_path(column, text):
            text = os.fspath(base / Path(text).expanduser())
        values[column] = text
    output = values.get("output")
    if output is not None and "filename" not in values and Path(str(output)).suffix:
        values["output"], values["filename"] = os.path.split(str(output))  # a file: folder + name
    if "output" not in row.cells and "filename" not in row.cells:
        raise InputError("the job has no output; give it an output column (the result's file, e.g. out/anna.mp4)")
    argv: list[str] = []
    for column, value in values.items():
        action = options[column]
        flag = f"--{column}"
        if action.nargs == 0:  # an on/off flag
            if value is True or (isinstance(value, str) and _is_true(column, value)):
                argv.append(flag)
        elif action.nargs == "?":  # --color_match [lab|rgb]
            word = str(value)
            if word.lower() in TRUE_WORDS:
                argv.append(flag)
            elif word.lower() not in FALSE_WORDS:
                argv += [flag, word]
        else:
            argv += [flag, str(value)]
    return argv


def parse_row(argv: list[str]) -> argparse.Namespace:
    """The single command's parse of ``argv``; its one-line error becomes an InputError, same words."""
    words = io.StringIO()
    try:
        with contextlib.redirect_stderr(words):
            return parse_args(argv)
    except SystemExit:
        text = " ".join(words.getvalue().split()).removeprefix("error: ").removesuffix(" (see --help)")
        raise InputError(text or "invalid flags") from None


# ---------------------------------------------------------------------------------------------------
# the check


def check_jobs(rows: list[Row], defaults: dict[str, object], base: Path, overwrite: bool) -> list[CheckedJob]:
    """Every row checked before any job runs: parsed, its inputs read, its output free (or, without
    --overwrite, already done: skipped), weights found once per setting."""
    checked: list[CheckedJob] = []
    outputs: dict[Path, int] = {}
    weights: dict[tuple, str] = {}
    for row in rows:
        job = CheckedJob(row, [])
        checked.append(job)
        try:
            job.argv = row_argv(row, defaults, base)
            if overwrite:
                job.argv.append("--overwrite")
            args = parse_row(job.argv)
            args.quiet = True
            job.output = Path(os.path.abspath(Path(args.output) / args.filename))
            args.output, args.filename = os.fspath(job.output.parent), job.output.name
            if job.output in outputs:
                raise InputError(f"output {job.output} is also job {outputs[job.output]}'s; give each job its own")
            outputs[job.output] = row.number
            if job.output.is_file() and not overwrite:
                job.done = True
                continue
            checked_job = Job.from_args(args)
            key = (args.weight_path, args.mobile_net, args.image_size)
            if key not in weights:  # found (or downloaded) here once, not by every job or worker
                weights[key] = os.fspath(resolve_weights(args, progress=True))
            args.weight_path = weights[key]
            job.args = args
            job.driver = driver_key(checked_job)
        except (FOMError, OSError) as err:
            job.error = one_line(err) if isinstance(err, FOMError) else _os_error_line(err)
    return checked


def _os_error_line(err: OSError) -> str:
    where = f": {err.filename}" if getattr(err, "filename", None) else ""
    return f"{err.strerror or err}{where}"


def driver_key(job) -> tuple | None:
    """What a job's driving keypoints depend on: the video (path, size, time), its cut and timing,
    the face window, and the model. Jobs with equal keys share one computation."""
    args = job.args
    if job.driving is None:
        return None
    path = os.path.realpath(args.driving_video)
    stat = os.stat(path)
    return (path, stat.st_size, stat.st_mtime_ns, args.start, args.duration, args.max_frames, args.fps,
            args.crop_driving, args.face_detector if args.crop_driving else None, args.weight_path,
            args.mobile_net, args.image_size, args.precision, args.warp_border, args.device, args.cpu)
