"""`python -m obs` is the `obs` command."""

import sys

from obs.cli import main

sys.exit(main())
