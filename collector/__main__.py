"""`python -m collector` is `obs`."""

import sys

from collector.cli import main

sys.exit(main())
