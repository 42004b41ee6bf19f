"""`python -m collector`: the collector's own commands (`collector`, `check-config`); `obs` has them too."""

import sys

from collector.cli import main

sys.exit(main())
