"""Error types the engine raises for problems a user can fix.

Every message names the problem and, where there is one, the fix. A fix that a front end spells in
its own words (the command line's ``--overwrite``, a node's ``device`` input, a Python argument) is
given once per front end: the engine raises ``InputError(problem, python=..., cli=..., node=...)``
and each front end shows ``error.worded(front_end)``; ``str(error)`` is the Python library's
wording. Messages whose fix reads the same everywhere (a file path, a range) need no advice.
"""

from __future__ import annotations

FRONT_ENDS = ("python", "cli", "node")


class FOMError(Exception):
    """Base class for every error the engine raises on purpose.

    ``message`` names the problem; ``python``, ``cli`` and ``node`` are how a user of that front end
    fixes it, appended in parentheses by :meth:`worded` (a front end without advice gets the
    message alone).
    """

    def __init__(self, message: str = "", *, python: str | None = None, cli: str | None = None,
                 node: str | None = None):
        super().__init__(message)
        self.message = message
        self.advice = {name: text for name, text in zip(FRONT_ENDS, (python, cli, node), strict=True) if text}

    def worded(self, front_end: str) -> str:
        """The message with ``front_end``'s advice ("python", "cli" or "node")."""
        if front_end not in FRONT_ENDS:
            raise ValueError(f"unknown front end {front_end!r}; use one of {', '.join(FRONT_ENDS)}")
        advice = self.advice.get(front_end)
        return f"{self.message} ({advice})" if advice else self.message

    def __str__(self) -> str:
        return self.worded("python")


class InputError(FOMError, ValueError):
    """A user-supplied value (image, video, box, option) is unusable."""


class CheckpointError(FOMError):
    """A checkpoint file is missing, of an unknown format, unsafe, or does not fit the networks."""


class OutputError(FOMError, OSError):
    """A result could not be written for the disk's reasons (full, read-only, no permission)."""


class WeightsMissingError(FOMError, FileNotFoundError):
    """Weights are not on disk and could not (or may not) be downloaded."""


def already_exists(path, what: str = "output file") -> InputError:
    """The error for a result that is already on disk and was not to be replaced, with each front
    end's way to replace it."""
    return InputError(f"{what} already exists: {path}", python="pass overwrite=True to replace it",
                      cli="pass --overwrite to replace it", node="pick another name or turn on overwrite")
