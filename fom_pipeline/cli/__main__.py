"""`python -m fom_pipeline.cli ...`: the same as `python -m fom_pipeline ...`."""

import sys

from . import main

sys.exit(main())
