"""Load the rule files and extension files a configuration names (globs as Prometheus' rule_files) into RuleGroups."""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from pathlib import Path

from alerting.rule_extensions import apply_extensions
from alerting.rulefmt import RuleFileError, parse_rule_file
from alerting.rules import RuleGroup

__all__ = ["RuleFileError", "expand_paths", "load_rule_files"]

_GLOB_CHARS = re.compile(r"[*?\[]")


def expand_paths(patterns: Sequence[str | Path]) -> list[str]:
    """Glob patterns as Prometheus' rule_files expands them (each pattern's matches sorted). A pattern with
    no glob characters must name an existing file (Prometheus would skip it silently; a typo should not
    silently drop every rule)."""
    out: list[str] = []
    for pattern in patterns:
        text = str(pattern)
        if _GLOB_CHARS.search(text):
            out.extend(sorted(glob.glob(text)))
        elif not Path(text).is_file():
            raise RuleFileError([f"{text}: no such rule file"])
        else:
            out.append(text)
    return out


def load_rule_files(
    paths: Sequence[str | Path],
    default_interval_s: float,
    extension_paths: Sequence[str | Path] = (),
) -> list[RuleGroup]:
    """Every group of the rule files `paths` (globs allowed), in file then group order, with the additions
    of `extension_paths` merged in (deadman groups appended). Raises RuleFileError listing every problem."""
    groups: list[RuleGroup] = []
    errors: list[str] = []
    for path in expand_paths(paths):
        try:
            groups.extend(parse_rule_file(path, default_interval_s))
        except RuleFileError as e:
            errors.extend(e.errors)
    if errors:
        raise RuleFileError(errors)
    return apply_extensions(groups, expand_paths(extension_paths), default_interval_s)
