"""Our Kapacitor-like additions to Prometheus rules, read from extension files promtool never sees.

An extension file (`*.obs.yml`, format in alerting/README.md) has two optional keys:
- `alerts`: entries naming an alerting rule of the loaded rule files (`alert`, optionally `group`) and
  giving it `levels`, `repeat_interval` and/or `flapping`;
- `deadman`: entries that generate alerting rules firing when series stop arriving.
An entry naming an alert that no loaded rule file defines is an error naming the file and line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser
import yaml

from alerting import template
from alerting.durations import format_duration_ms
from alerting.model import LEVELS
from alerting.rulefmt import LABEL_NAME_RE, FileErrors, RuleFileError, duration_ms
from alerting.rules import AlertingRule, FlappingSpec, Level, Rule, RuleGroup
from alerting.yaml_nodes import NodeError, integer, line_of, mapping, number, scalar_text, sequence, string_map

OPS = (">", ">=", "<", "<=", "==", "!=")
DEFAULT_DEADMAN_GROUP = "deadman"
DEFAULT_DEADMAN_LOOKBACK_MS = 60 * 60 * 1000  # series seen in the last hour are expected to keep arriving
_ENTRY_KEYS = ("alert", "group", "levels", "repeat_interval", "flapping")
_DEADMAN_KEYS = ("name", "selector", "by", "interval", "lookback", "group", "for", "labels", "annotations")


@dataclass
class AlertExtension:
    """One `alerts` entry: what it adds to the rules it names."""

    alert: str
    group: str | None
    line: int
    column: int
    levels: tuple[Level, ...] | None = None
    repeat_interval_s: float | None = None
    flapping: FlappingSpec | None = None


@dataclass
class ExtensionFile:
    path: str
    alerts: list[AlertExtension] = field(default_factory=list)
    deadman_groups: dict[str, list[Rule]] = field(default_factory=dict)  # group name -> generated rules


def deadman_expr(selector: str, interval_ms: int, lookback_ms: int, by: Sequence[str] | None) -> str:
    """Series of `selector` seen within `lookback` but not within the last `interval`.

    `by` None keeps every label (each series is watched); a list watches the groups of those labels; an
    empty list watches the metric as a whole. last_over_time ignores stale markers, so a scraped series that
    went stale counts as stopped. The alert resolves by itself once the silence outlasts `lookback`.
    """
    recent, seen = format_duration_ms(interval_ms), format_duration_ms(lookback_ms)
    if by is None:
        return f"last_over_time({selector}[{seen}]) unless last_over_time({selector}[{recent}])"
    grouping = f"group by ({', '.join(by)})"
    return f"{grouping} (last_over_time({selector}[{seen}])) unless {grouping} (last_over_time({selector}[{recent}]))"


def parse_extension_text(text: str, path: str) -> ExtensionFile:
    errs = FileErrors(path)
    out = ExtensionFile(path)
    root = errs.compose(text)
    if root is None:
        return out
    try:
        for key, _, value in mapping(root, "extension file", ("alerts", "deadman")):
            for node in sequence(value, key):
                try:
                    if key == "alerts":
                        out.alerts.append(_parse_alert_entry(node))
                    else:
                        group, rule = _parse_deadman(node, path)
                        out.deadman_groups.setdefault(group, []).append(rule)
                except NodeError as e:
                    errs.node(e)
    except NodeError as e:
        errs.node(e)
    errs.raise_if_any()
    return out


def _parse_alert_entry(node: yaml.Node) -> AlertExtension:
    entry = AlertExtension("", None, line_of(node), node.start_mark.column + 1)
    for key, _, value in mapping(node, "alerts entry", _ENTRY_KEYS):
        if key == "alert":
            entry.alert = scalar_text(value)
        elif key == "group":
            entry.group = scalar_text(value)
        elif key == "levels":
            entry.levels = _parse_levels(value)
        elif key == "repeat_interval":
            entry.repeat_interval_s = duration_ms(value) / 1000
        elif key == "flapping":
            entry.flapping = _parse_flapping(value)
    if not entry.alert:
        raise NodeError(node, "an alerts entry needs 'alert' (the name of an alerting rule)")
    return entry


def _parse_levels(node: yaml.Node) -> tuple[Level, ...]:
    levels: list[Level] = []
    for item in sequence(node, "level"):
        name, op, threshold = "", "", None
        for key, _, value in mapping(item, "level", ("level", "op", "value")):
            if key == "level":
                name = scalar_text(value)
                if name not in LEVELS:
                    raise NodeError(value, f"level must be one of {', '.join(LEVELS)}, not {name!r}")
            elif key == "op":
                op = scalar_text(value)
                if op not in OPS:
                    raise NodeError(value, f"op must be one of {' '.join(OPS)}, not {op!r}")
            else:
                threshold = number(value)
        if not name or not op or threshold is None:
            raise NodeError(item, "a level needs 'level', 'op' and 'value'")
        if levels and LEVELS.index(name) >= LEVELS.index(levels[-1].name):
            raise NodeError(item, f"levels go from the most severe down: {name!r} cannot follow {levels[-1].name!r}")
        levels.append(Level(name, op, threshold))
    if not levels:
        raise NodeError(node, "levels must not be empty")
    return tuple(levels)


def _parse_flapping(node: yaml.Node) -> FlappingSpec:
    spec = FlappingSpec()
    values: dict[str, float | int] = {}
    for key, _, value in mapping(node, "flapping", ("low", "high", "history")):
        values[key] = integer(value) if key == "history" else number(value)
    spec = dataclasses.replace(spec, **values)  # type: ignore[arg-type]
    if not 0 <= spec.low < spec.high <= 1:
        raise NodeError(node, f"flapping needs 0 <= low < high <= 1 (got low {spec.low}, high {spec.high})")
    if spec.history < 2:
        raise NodeError(node, f"flapping history must be at least 2 evaluations (got {spec.history})")
    return spec


def _parse_deadman(node: yaml.Node, path: str) -> tuple[str, AlertingRule]:
    name = selector = ""
    group = DEFAULT_DEADMAN_GROUP
    by: list[str] | None = None
    interval_ms = for_ms = 0
    lookback_ms = DEFAULT_DEADMAN_LOOKBACK_MS
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for key, _, value in mapping(node, "deadman entry", _DEADMAN_KEYS):
        if key == "name":
            name = scalar_text(value)
        elif key == "selector":
            selector = scalar_text(value)
            try:
                parsed = promql_parser.parse(selector)
            except ValueError as e:
                raise NodeError(value, f"could not parse selector: {e}") from None
            if not isinstance(parsed, promql_parser.VectorSelector):
                raise NodeError(value, f'selector must be a vector selector such as up{{job="x"}}, not {selector!r}')
        elif key == "by":
            by = [scalar_text(v) for v in sequence(value, "string")]
            for label in by:
                if not LABEL_NAME_RE.fullmatch(label):
                    raise NodeError(value, f"invalid label name in by: {label}")
        elif key == "interval":
            interval_ms = duration_ms(value)
        elif key == "lookback":
            lookback_ms = duration_ms(value)
        elif key == "group":
            group = scalar_text(value)
        elif key == "for":
            for_ms = duration_ms(value)
        elif key == "labels":
            labels = string_map(value)
        elif key == "annotations":
            annotations = string_map(value)
    if not name or not selector or not interval_ms:
        raise NodeError(node, "a deadman entry needs 'name', 'selector' and a nonzero 'interval'")
    if lookback_ms <= interval_ms:
        raise NodeError(node, "a deadman's lookback must be longer than its interval")
    for label, text in (*labels.items(), *annotations.items()):
        if not LABEL_NAME_RE.fullmatch(label) or label == "__name__":
            raise NodeError(node, f"invalid label or annotation name: {label}")
        try:
            template.check(text)
        except template.TemplateError as e:
            raise NodeError(node, f"{label!r}: template: {e}") from None
    rule = AlertingRule(
        name=name,
        expr=deadman_expr(selector, interval_ms, lookback_ms, by),
        for_s=for_ms / 1000,
        labels=labels,
        annotations=annotations,
        source=f"{path}:{line_of(node)}",
    )
    return group, rule


def apply_extensions(groups: list[RuleGroup], paths: Sequence[str], default_interval_s: float) -> list[RuleGroup]:
    """`groups` with each extension file's deadman groups appended and its alert entries merged in."""
    errors: list[str] = []
    files: list[ExtensionFile] = []
    for path in paths:
        try:
            files.append(parse_extension_text(Path(path).read_text(encoding="utf-8"), path))
        except RuleFileError as e:
            errors.extend(e.errors)
        except (OSError, UnicodeDecodeError) as e:
            errors.append(f"{path}: {e}")
    if errors:
        raise RuleFileError(errors)
    out = list(groups)
    for ext in files:
        for name, rules in ext.deadman_groups.items():
            out.append(RuleGroup(name=name, file=ext.path, interval_s=default_interval_s, rules=tuple(rules)))
    applied: dict[tuple[int, int], str] = {}  # (group index, rule index) -> the entry that extended it
    for ext in files:
        errs = FileErrors(ext.path)
        for entry in ext.alerts:
            where = f"{ext.path}:{entry.line}"
            targets = [
                (gi, ri)
                for gi, g in enumerate(out)
                if entry.group is None or g.name == entry.group
                for ri, r in enumerate(g.rules)
                if isinstance(r, AlertingRule) and r.name == entry.alert
            ]
            if not targets:
                in_group = f" in group {entry.group!r}" if entry.group is not None else ""
                errs.add(
                    f"alert {entry.alert!r}: no alerting rule of that name{in_group} in the rule files",
                    entry.line,
                    entry.column,
                )
                continue
            for gi, ri in targets:
                if (gi, ri) in applied:
                    errs.add(
                        f"alert {entry.alert!r} of group {out[gi].name!r} is already extended at {applied[gi, ri]}",
                        entry.line,
                        entry.column,
                    )
                    continue
                applied[gi, ri] = where
                out[gi] = _extend(out[gi], ri, entry)
        errors.extend(errs.errors)
    if errors:
        raise RuleFileError(errors)
    return out


def _extend(group: RuleGroup, index: int, entry: AlertExtension) -> RuleGroup:
    rule = group.rules[index]
    assert isinstance(rule, AlertingRule)
    changes: dict[str, object] = {}
    if entry.levels is not None:
        changes["levels"] = entry.levels
    if entry.repeat_interval_s is not None:
        changes["repeat_interval_s"] = entry.repeat_interval_s
    if entry.flapping is not None:
        changes["flapping"] = entry.flapping
    rules = list(group.rules)
    rules[index] = dataclasses.replace(rule, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(group, rules=tuple(rules))
