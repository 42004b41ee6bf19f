"""The `obs` command: subcommands for the collector and for the local stack."""

from __future__ import annotations

import sys

from collector.cli import main as collector_main


def main(argv: list[str] | None = None) -> int:
    # For now every subcommand is the collector's; `up`, `down`, `status` and `fault` move here.
    return collector_main(argv)


if __name__ == "__main__":
    sys.exit(main())
