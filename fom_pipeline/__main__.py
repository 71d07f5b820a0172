"""`python -m fom_pipeline ...` animates faces; `python -m fom_pipeline convert IN OUT` converts weights."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
