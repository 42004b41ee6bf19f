"""Prometheus relabelling (model/relabel): rewrite, keep or drop a label set by a list of rules.

Pure: a label dict and the rules in, a new label dict (or None when the set is dropped) out. Empty
label values mean absent, as in Prometheus: setting a label to "" deletes it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from collector.config import RelabelConfig

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# A `$` reference's name: letters, digits and underscores, as Go's regexp.Expand reads it.
_REF_NAME = re.compile(r"\w+")


def expand(template: str, match: re.Match[str]) -> str:
    """Go's regexp.Expand: `$1`, `${1}`, `$name`, `${name}` and `$$` for a literal `$`.

    `$name` takes the longest run of letters, digits and `_`, so `$1x` refers to a group named `1x`.
    A reference to a missing or unmatched group gives ""; a `$` not followed by a name stays as is.
    """
    out: list[str] = []
    pos = 0
    while True:
        dollar = template.find("$", pos)
        if dollar < 0:
            out.append(template[pos:])
            return "".join(out)
        out.append(template[pos:dollar])
        pos = dollar + 1
        if template.startswith("$", pos):
            out.append("$")
            pos += 1
            continue
        brace = template.startswith("{", pos)
        m = _REF_NAME.match(template, pos + brace)
        if m is None or (brace and not template.startswith("}", m.end())):
            out.append("$")  # malformed: the `$` is text
            continue
        pos = m.end() + brace
        out.append(_group(m.group(), match))


def _group(name: str, match: re.Match[str]) -> str:
    # Go reads a name of digits (no leading zero) as a group number, anything else as a group name.
    if name.isdigit() and name.isascii() and (name == "0" or not name.startswith("0")):
        number = int(name)
        return (match.group(number) or "") if number <= len(match.groups()) else ""
    if name in match.re.groupindex:
        return match.group(name) or ""
    return ""


def relabel(labels: dict[str, str], configs: Sequence[RelabelConfig]) -> dict[str, str] | None:
    """Apply the rules in order; None when a keep or drop rule drops the set. `labels` is not changed."""
    out = {k: v for k, v in labels.items() if v}
    for cfg in configs:
        if not _apply(cfg, out):
            return None
    return out


def _apply(cfg: RelabelConfig, labels: dict[str, str]) -> bool:
    """One rule, changing `labels` in place; False when the set is dropped."""
    pattern = cfg.pattern
    action = cfg.action
    if action in ("labelmap", "labeldrop", "labelkeep"):
        # Over a snapshot: labels a rule adds are not seen by the same rule (Go's Builder.Range).
        for name, value in list(labels.items()):
            m = pattern.fullmatch(name)
            if action == "labelmap":
                if m is not None:
                    target = expand(cfg.replacement, m)
                    if target:
                        labels[target] = value
            elif (m is None) == (action == "labelkeep"):
                del labels[name]
        return True
    value = cfg.separator.join(labels.get(name, "") for name in cfg.source_labels)
    m = pattern.fullmatch(value)
    if action == "keep":
        return m is not None
    if action == "drop":
        return m is None
    # replace
    if m is None:
        return True
    target = expand(cfg.target_label, m)
    if not _LABEL_NAME.fullmatch(target):
        return True  # Prometheus skips a rule whose expanded target is not a label name
    result = expand(cfg.replacement, m)
    if result:
        labels[target] = result
    else:
        labels.pop(target, None)
    return True
