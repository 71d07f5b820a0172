"""Where model weights live, and how missing ones are fetched.

Weights sit in the pack's ``models/`` folder (``FOM_MODELS_DIR`` overrides it) in two subfolders:
``fom/`` for motion models and ``face_detection/`` for face detectors. A missing file is downloaded
from its official URL with a progress bar, into a hidden partial file first, checked (size, checksum, and
that it reads as the weights it should be) and only then moved into place, so an interrupted, corrupt
or wrong download never leaves a file that looks valid. ``FOM_ALLOW_DOWNLOAD=0`` (or
``allow_download=False``) forbids network access: the error then names the URL and the exact path to
save the file as. ``FOM_WEIGHTS_MIRROR=URL`` fetches every known file from ``URL/<file name>``
instead of its official host. The command line and the ComfyUI nodes share these functions.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from . import atomic
from .errors import FOMError, InputError, WeightsMissingError
from .known_weights import FACE_SUBDIR, FOM_RELEASES, FOM_SUBDIR, KNOWN_WEIGHTS, KnownWeights, release_key
from .sfd_weights import load_sfd_network

# The catalogue lives in known_weights (S3FD reading needs its URL without importing this module);
# its names stay importable from here.
__all__ = [
    "FACE_SUBDIR", "FOM_RELEASES", "FOM_SUBDIR", "KNOWN_WEIGHTS", "PACK_ROOT", "KnownWeights", "download",
    "downloads_allowed", "ensure_weights", "find_release", "find_weights", "models_dir", "release_for",
    "release_key", "source_url", "weights_check",
]

PACK_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """The folder holding ``fom/`` and ``face_detection/``: ``$FOM_MODELS_DIR`` or the pack's models/."""
    env = os.environ.get("FOM_MODELS_DIR", "").strip()
    return Path(env).expanduser() if env else PACK_ROOT / "models"


def source_url(info: KnownWeights) -> str:
    """Where a known file is downloaded from: its official URL, or ``$FOM_WEIGHTS_MIRROR/<file name>``
    when a mirror is set (a company mirror, or a country where the official host is slow)."""
    mirror = os.environ.get("FOM_WEIGHTS_MIRROR", "").strip()
    return f"{mirror.rstrip('/')}/{info.filename}" if mirror else info.url


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """An explicit argument wins; otherwise ``FOM_ALLOW_DOWNLOAD=0``/``false``/``no`` forbids downloads."""
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get("FOM_ALLOW_DOWNLOAD", "1").strip().lower() not in ("0", "false", "no", "off")


def _missing(dest: Path, url: str, why: str) -> WeightsMissingError:
    return WeightsMissingError(f"{dest.name} is missing ({why}): download {url} and save it as {dest}")


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    allow_download: bool | None = None,
    timeout: float = 60.0,
    callback: Callable[[int, int], None] | None = None,
    verify: Callable[[Path], object] | None = None,
) -> Path:
    """Fetch ``url`` to ``dest`` atomically and return ``dest``.

    Writes a hidden partial beside ``dest`` (:mod:`fom_pipeline.atomic`) and moves it into place; the
    partial is removed on any failure, including KeyboardInterrupt.
    ``sha256`` may be the full hex digest or a prefix of it (torch-hub style).
    ``size`` (bytes) and the server's Content-Length are both checked. ``callback(done, total)`` is
    called after every chunk (an exception raised there aborts the download cleanly).
    ``verify(part_path)`` runs on the complete file before it is moved into place; raising there
    rejects the download (see :func:`weights_check`).
    """
    dest = Path(dest)
    if not downloads_allowed(allow_download):
        raise _missing(dest, url, "downloads are turned off, FOM_ALLOW_DOWNLOAD=0")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = atomic.new_partial(dest)
    digest = hashlib.sha256()
    done = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "fom-pipeline"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else 0
            bar = _progress_bar(total, dest.name) if progress else None
            try:
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    if callback is not None:
                        callback(done, total)
            finally:
                if bar is not None:
                    bar.close()
        if total and done != total:
            raise _missing(dest, url, f"download stopped after {done} of {total} bytes; try again")
        if size is not None and done != size:
            raise _missing(dest, url, f"downloaded {done} bytes, expected {size}; the file is wrong")
        if sha256 and not digest.hexdigest().startswith(sha256.lower()):
            raise _missing(dest, url, f"sha256 {digest.hexdigest()[:16]}... does not match {sha256}")
        if verify is not None:
            try:
                verify(part)
            except (FOMError, ValueError, OSError, RuntimeError, KeyError, EOFError) as exc:
                reason = str(exc).replace(str(part), dest.name).strip().splitlines()
                raise _missing(dest, url, "the downloaded file is not usable: "
                               + (reason[0][:200] if reason else type(exc).__name__)) from None
        atomic.commit(part, dest, overwrite=True)
    except WeightsMissingError:
        atomic.remove(part)
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        atomic.remove(part)
        raise _missing(dest, url, f"download failed: {exc}") from exc
    except BaseException:
        atomic.remove(part)
        raise
    return dest


def _progress_bar(total: int, name: str):
    from tqdm import tqdm

    return tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def find_weights(name: str, search_dirs: Iterable[str | os.PathLike] | None = None) -> Path | None:
    """First existing file called ``name`` in ``search_dirs``; a KNOWN_WEIGHTS key or file name
    matches any accepted spelling of that file (``vox-mobile.pdparams`` or ``vox_mobile.pdparams``).

    Each directory is searched directly and in its ``fom/`` and ``face_detection/`` subfolders.
    ``search_dirs`` defaults to ``[models_dir()]``.
    """
    key = release_key(name)
    filenames = KNOWN_WEIGHTS[key].names if key else (name,)
    dirs = [models_dir()] if search_dirs is None else [Path(d) for d in search_dirs]
    for base in dirs:
        for folder in (base, base / FOM_SUBDIR, base / FACE_SUBDIR):
            for filename in filenames:
                candidate = folder / filename
                if candidate.is_file():
                    return candidate
    return None


def release_for(mobile: bool = False, image_size: int | None = None) -> str:
    """The PaddleGAN release PaddleGAN's demo downloads: the mobile model when asked, the 512 px model
    for ``image_size`` 512, else vox-cpk (256 px)."""
    return "vox-mobile" if mobile else ("vox-cpk-512" if image_size == 512 else "vox-cpk")


def find_release(key: str, search_dirs: Iterable[str | os.PathLike] | None = None) -> Path | None:
    """A release on disk: our converted ``.safetensors`` of it first (``vox-cpk.safetensors``, made by
    ``convert``: it loads faster), else the release file in any accepted spelling (see :func:`find_weights`)."""
    converted = [Path(name).stem + ".safetensors" for name in KNOWN_WEIGHTS[key].names]
    found = next(filter(None, (find_weights(name, search_dirs) for name in converted)), None)
    return found or find_weights(key, search_dirs)


def weights_check(dest: str | os.PathLike, subdir: str | None = None) -> Callable[[Path], None]:
    """A ``verify`` for :func:`download`: the finished file must read as what ``dest`` is meant to be.

    In ``fom/``: a FOMM checkpoint of ``dest``'s format (read with the safe readers, config inferred).
    In ``face_detection/``: S3FD weights that load into the detector network (no pickle code runs).
    """
    dest = Path(dest)
    subdir = subdir or dest.parent.name

    def check(path: Path) -> None:
        if subdir == FACE_SUBDIR:
            load_sfd_network(path, name=dest.name)
        else:
            from .checkpoints import read_checkpoint

            read_checkpoint(path, name=dest.name)

    return check


def ensure_weights(
    key: str,
    models_root: str | os.PathLike | None = None,
    allow_download: bool | None = None,
    extra_dirs: Iterable[str | os.PathLike] = (),
    progress: bool = True,
    callback: Callable[[int, int], None] | None = None,
    check: bool = True,
) -> Path:
    """Path of a KNOWN_WEIGHTS file (key or any accepted file name): found locally (models folder,
    then ``extra_dirs``) or downloaded to ``<models_root>/<subdir>/<filename>``.

    A download is checked with :func:`weights_check` before it is moved into place (``check=False``
    skips that); ``callback(done, total)`` sees the bytes as they arrive.
    """
    found_key = release_key(key)
    if found_key is None:
        raise InputError(f"unknown weights {key!r}: choose one of {', '.join(KNOWN_WEIGHTS)}")
    info = KNOWN_WEIGHTS[found_key]
    root = Path(models_root) if models_root is not None else models_dir()
    found = find_weights(found_key, [root, *extra_dirs])
    if found is not None:
        return found
    dest = root / info.subdir / info.filename
    return download(source_url(info), dest, info.sha256, info.size, progress=progress,
                    allow_download=allow_download, callback=callback,
                    verify=weights_check(dest, info.subdir) if check else None)
