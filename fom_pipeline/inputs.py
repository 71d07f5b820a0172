"""Input files checked the same way wherever the engine opens one (a video, a picture, a motion file):
missing, a folder or unreadable, each said in one line naming the file."""

from __future__ import annotations

import os

from .errors import InputError


def check_input_file(path: str | os.PathLike, what: str, where: str = "check the path",
                     readable: bool = True) -> str:
    """``path`` as a string once it names an existing file (``readable``: that this process may read);
    ``what`` names the file in the error, ``where`` says where to look when it is missing."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{what} not found: {path} ({where})")
    if os.path.isdir(path):
        raise InputError(f"{what} is a folder, not a file: {path}")
    if readable and not os.access(path, os.R_OK):
        raise InputError(f"{what} is not readable: {path} (check its permissions)")
    return path
