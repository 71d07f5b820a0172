"""Many animation jobs in one run: ``python -m fom_pipeline batch JOBS`` (``fom-animate batch``).

- :mod:`.jobs`: the jobs file read, each row turned into the single command's flags and checked by
  the single command's own checks before any job runs.
- :mod:`.worker`: networks loaded once, then job after job; a job's failure stays its result.
- :mod:`.local`: one process, each driving video's keypoints computed once.
- :mod:`.on_ray`: the same jobs on Ray actors (``pip install 'fom-multiface[ray]'``).
- :mod:`.command`: flags, results file (JSON Lines), progress and summary.
"""

from .command import main

__all__ = ["main"]
