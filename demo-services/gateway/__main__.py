"""`python -m gateway --port 8080 [--host H] [--config FILE]` runs the gateway."""

import sys

from gateway.cli import main

sys.exit(main())
