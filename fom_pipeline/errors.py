"""Error types the engine raises for problems a user can fix.

Front ends (command line, ComfyUI nodes) show ``str(error)`` as is: every message names the problem
and the fix, so no stack trace is needed.
"""


class FOMError(Exception):
    """Base class for every error the engine raises on purpose."""


class InputError(FOMError, ValueError):
    """A user-supplied value (image, video, box, option) is unusable."""


class CheckpointError(FOMError):
    """A checkpoint file is missing, of an unknown format, unsafe, or does not fit the networks."""


class WeightsMissingError(FOMError, FileNotFoundError):
    """Weights are not on disk and could not (or may not) be downloaded."""
