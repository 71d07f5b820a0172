"""Atomic output: how every file the pack writes reaches its place.

Each writer (the video encoder, motion files, converted checkpoints, downloaded weights) writes under a
hidden partial name beside the final file and moves it into place in one step, so an interrupted,
failed or killed run never leaves a half-written file under the final name, nor damages an existing
result. A partial is made like any new file (its permissions follow the umask, 0644 usually).

Partial names say who wrote them: ``.NAME.HOST-PID-TOKEN.partial.EXT``. A kill -9 leaves its partial
behind; the next write into that folder removes every partial whose writer is provably gone (same
host, process no longer running). A write that fails for the disk's reasons is said in one line
(:class:`~fom_pipeline.errors.OutputError`: "no space left on FOLDER", "cannot write to FOLDER"), not
in the words of the library or the ffmpeg that hit it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError, OutputError, already_exists

HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]  # partials of other machines are theirs
PARTIAL = re.compile(r"^\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]+\.partial(\.[^.]+)?$")
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def partial_name(path: str | os.PathLike) -> Path:
    """A fresh hidden partial name beside ``path``, keeping its extension (ffmpeg picks the container by it)."""
    path = Path(path)
    suffix = path.suffix if path.suffix else ""
    return path.with_name(f".{path.stem}.{HOST}-{os.getpid()}-{secrets.token_hex(4)}.partial{suffix}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours (EPERM), or cannot be asked: leave its files alone
        return True
    return True


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove the partials in ``folder`` left by writers of this host that are no longer running (a kill -9,
    a power cut); returns what was removed. Partials of running writers and other hosts stay."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = PARTIAL.match(entry.name)
        if match and match["host"] == HOST and not _alive(int(match["pid"])):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def disk_error(folder: str | os.PathLike, cause: BaseException | str) -> OutputError | None:
    """The one-line error for a write into ``folder`` that failed for the disk's reasons (full, read-only,
    no permission), from an OSError or from a tool's message (ffmpeg's) naming the system's error; None
    when the failure is something else. In a message, a refused permission counts only on a line that
    names ``folder`` (ffmpeg may also be refused an input file)."""
    code = cause.errno if isinstance(cause, OSError) else None
    text = "" if isinstance(cause, OSError) else str(cause)
    about_folder = "\n".join(line for line in text.splitlines() if os.fspath(folder) in line)
    if code in NO_SPACE or any(os.strerror(c) in text for c in NO_SPACE):
        return OutputError(f"no space left on {folder}", python="free some space or write elsewhere",
                           cli="free some space or give another --output", node="free some space on that disk")
    for c in NOT_WRITABLE:
        if code == c or os.strerror(c) in about_folder:
            return OutputError(f"cannot write to {folder}: {os.strerror(c).lower()}",
                               python="write elsewhere or change the folder's permissions",
                               cli="give another --output or change the folder's permissions",
                               node="check the permissions of ComfyUI's output folder")
    return None


def new_partial(path: str | os.PathLike) -> Path:
    """Create an empty partial file beside ``path`` (after clearing abandoned ones there) and return its name."""
    path = Path(path)
    remove_stale_partials(path.parent)
    tmp = partial_name(path)
    try:
        create_new(tmp)
    except OSError as err:
        raise disk_error(path.parent, err) or err from None
    return tmp


def create_new(path: Path) -> None:
    """An empty file that did not exist, made as any new file is (0666 less the umask: 0644 usually)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def commit(tmp: str | os.PathLike, path: str | os.PathLike, overwrite: bool = False,
           what: str = "output file") -> Path:
    """Move the finished partial ``tmp`` to ``path`` in one step. Without ``overwrite`` a file that
    appeared at ``path`` meanwhile is never replaced (a hard link refuses it atomically)."""
    path = Path(path)
    if overwrite:
        os.replace(tmp, path)
        return path
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise already_exists(path, what) from None
    except OSError:  # no hard links on this file system (FAT, some network shares)
        if path.exists():
            raise already_exists(path, what) from None
        os.replace(tmp, path)
        return path
    remove(tmp)
    return path


def remove(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False, what: str = "output file") -> Iterator[Path]:
    """``with atomic_output(path) as tmp:`` write ``tmp`` (any writer: a library, a tool); leaving the
    block normally moves it to ``path``, leaving it with an exception (Ctrl-C included) removes it.
    A write the disk refused becomes an OutputError naming the folder."""
    path = Path(path)
    tmp = new_partial(path)
    try:
        yield tmp
        commit(tmp, path, overwrite, what)
    except (InputError, OutputError):
        remove(tmp)
        raise
    except Exception as err:
        remove(tmp)
        raise disk_error(path.parent, err) or err from None
    except BaseException:
        remove(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False, what: str = "output file") -> Path:
    """``data`` written to ``path`` atomically (see :func:`atomic_output`). Serialized files (safetensors)
    come here as bytes: a library that writes files itself makes them 0600 and words a full disk its way."""
    with atomic_output(path, overwrite, what) as tmp, open(tmp, "wb") as out:
        out.write(data)
    return Path(path)


def check_target(path: str | os.PathLike, overwrite: bool = False, what: str = "output file") -> Path:
    """Where a result will go, checked before any work: not a folder, not an existing file unless
    ``overwrite``, its folder created and writable."""
    out = Path(path)
    if out.is_dir():
        raise InputError(f"output path is a folder: {out} (give a file name)")
    if out.exists() and not overwrite:
        raise already_exists(out, what)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create output folder {out.parent}: {err.strerror or err}") from None
    if not os.access(out.parent, os.W_OK):
        code = errno.EROFS if os.statvfs(out.parent).f_flag & os.ST_RDONLY else errno.EACCES
        raise disk_error(out.parent, OSError(code, os.strerror(code)))
    return out
