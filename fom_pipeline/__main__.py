"""`python -m fom_pipeline ...` animates faces; `... convert IN OUT` converts weights; `... batch JOBS` runs
many jobs (fom_pipeline.commands)."""

import sys

from .commands import main

if __name__ == "__main__":
    sys.exit(main())
