"""`python -m discovery --port 8761 [--host H] [--config FILE]` runs the registry."""

import sys

from discovery.cli import main

sys.exit(main())
