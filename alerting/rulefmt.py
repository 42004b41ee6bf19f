"""Parse Prometheus rule files into RuleGroups, validated as promtool validates them.

The rule-file format is Prometheus' (PROTOCOLS.md §7) and is parsed exactly: unknown keys are errors as in
`promtool check rules`, and so are duplicate group names in a file, a rule with both or neither of
`alert`/`record`, an invalid recording-rule metric name, invalid label or annotation names, an expression
that does not parse and a label or annotation template that does not parse. Beyond Prometheus 2.42 we also
accept the group keys later Prometheus versions added (`query_offset`, `labels`).

Our additions (levels, repeat interval, flapping, deadman) live in separate extension files that promtool
never reads (alerting/README.md documents them; alerting.rule_extensions parses them; alerting.rulefile
loads both).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser
import yaml

from alerting import template
from alerting.durations import DurationError, parse_duration_ms
from alerting.goformat import go_quote
from alerting.rules import AlertingRule, RecordingRule, Rule, RuleGroup
from alerting.yaml_nodes import NodeError, compose, integer, line_of, mapping, scalar_text, sequence, string_map

LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_GROUP_KEYS = ("name", "interval", "query_offset", "limit", "rules", "labels")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


class RuleFileError(Exception):
    """A rule or extension file that cannot be loaded. `errors` holds every problem found, each naming the
    file, the line and column, and where there is one the group and the rule (1-based index and name)."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


@dataclass
class FileErrors:
    """Collects a file's errors as `file:line:col: group "g", rule 2, "Name": message` (Prometheus' wording)."""

    file: str
    errors: list[str] = field(default_factory=list)

    def add(
        self,
        message: str,
        line: int = 0,
        column: int = 0,
        group: str | None = None,
        rule: tuple[int, str] | None = None,
    ) -> None:
        where = self.file + (f":{line}:{column}" if line else "")
        context = ""
        if group is not None:
            context = f"group {go_quote(group)}: "
            if rule is not None:
                context = f"group {go_quote(group)}, rule {rule[0]}, {go_quote(rule[1])}: "
        self.errors.append(f"{where}: {context}{message}")

    def node(self, err: NodeError, group: str | None = None, rule: tuple[int, str] | None = None) -> None:
        self.add(err.message, err.line, err.column, group, rule)

    def compose(self, text: str) -> yaml.Node | None:
        """The YAML node tree of `text`; a syntax error is raised as this file's RuleFileError (file:line:col)."""
        try:
            return compose(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            self.add(f"yaml: {getattr(e, 'problem', None) or e}", line, column)
            self.raise_if_any()
            raise  # unreachable: raise_if_any raised, as an error was just added

    def raise_if_any(self) -> None:
        if self.errors:
            raise RuleFileError(self.errors)


def parse_rule_file(path: str, default_interval_s: float) -> list[RuleGroup]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleFileError([f"{path}: {e}"]) from None
    return parse_rule_text(text, path, default_interval_s)


def parse_rule_text(text: str, file: str, default_interval_s: float) -> list[RuleGroup]:
    """The groups of one rule file's text; `file` names it in errors and in each RuleGroup."""
    errs = FileErrors(file)
    root = errs.compose(text)
    if root is None:
        return []
    groups: list[RuleGroup] = []
    seen: set[str] = set()
    try:
        group_nodes: list[yaml.Node] = []
        for key, _, value in mapping(root, "rulefmt.RuleGroups", ("groups",)):
            if key == "groups":
                group_nodes = sequence(value, "rulefmt.RuleGroup")
    except NodeError as e:
        errs.node(e)
        errs.raise_if_any()
    for gnode in group_nodes:
        group = _parse_group(gnode, file, default_interval_s, errs)
        if group is None:
            continue
        if group.name == "":
            errs.add("Groupname must not be empty", line_of(gnode), gnode.start_mark.column + 1)
        if group.name in seen:
            errs.add(
                f'groupname: "{group.name}" is repeated in the same file', line_of(gnode), gnode.start_mark.column + 1
            )
        seen.add(group.name)
        groups.append(group)
    errs.raise_if_any()
    return groups


def duration_ms(node: yaml.Node) -> int:
    text = scalar_text(node)
    if text == "" and node.tag.endswith(":null"):
        return 0
    try:
        return parse_duration_ms(text)
    except DurationError as e:
        raise NodeError(node, str(e)) from None


def _parse_group(gnode: yaml.Node, file: str, default_interval_s: float, errs: FileErrors) -> RuleGroup | None:
    name = ""
    interval_ms = 0
    offset_ms = 0
    limit = 0
    labels: dict[str, str] = {}
    rule_nodes: list[yaml.Node] = []
    try:
        for key, _, value in mapping(gnode, "rulefmt.RuleGroup", _GROUP_KEYS):
            if key == "name":
                name = scalar_text(value)
            elif key == "interval":
                interval_ms = duration_ms(value)
            elif key == "query_offset":
                offset_ms = duration_ms(value)
            elif key == "limit":
                limit = integer(value)
            elif key == "labels":
                labels = string_map(value)
            elif key == "rules":
                rule_nodes = sequence(value, "rulefmt.RuleNode")
    except NodeError as e:
        errs.node(e)
        return None
    for label in labels:
        if not LABEL_NAME_RE.fullmatch(label) or label == "__name__":
            errs.add(f"invalid label name: {label}", line_of(gnode), gnode.start_mark.column + 1, name)
    rules: list[Rule] = []
    for index, rnode in enumerate(rule_nodes, start=1):
        rule = _parse_rule(rnode, file, name, index, errs)
        if rule is not None:
            rules.append(rule)
    return RuleGroup(
        name=name,
        file=file,
        interval_s=interval_ms / 1000 if interval_ms else float(default_interval_s),
        rules=tuple(rules),
        limit=limit,
        query_offset_s=offset_ms / 1000,
        labels=labels,
    )


@dataclass
class _RawRule:
    record: str = ""
    alert: str = ""
    expr: str = ""
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, yaml.Node] = field(default_factory=dict)


def _parse_rule(rnode: yaml.Node, file: str, group: str, index: int, errs: FileErrors) -> Rule | None:
    raw = _RawRule()
    try:
        for key, _, value in mapping(rnode, "rulefmt.RuleNode", _RULE_KEYS):
            raw.nodes[key] = value
            if key == "record":
                raw.record = scalar_text(value)
            elif key == "alert":
                raw.alert = scalar_text(value)
            elif key == "expr":
                raw.expr = scalar_text(value)
            elif key == "for":
                raw.for_ms = duration_ms(value)
            elif key == "keep_firing_for":
                raw.keep_firing_for_ms = duration_ms(value)
            elif key == "labels":
                raw.labels = string_map(value)
            elif key == "annotations":
                raw.annotations = string_map(value)
    except NodeError as e:
        errs.node(e, group)
        return None
    rule_id = (index, raw.alert or raw.record)
    before = len(errs.errors)
    for problem, node in validate_rule(raw, rnode):
        errs.add(problem, line_of(node), node.start_mark.column + 1, group, rule_id)
    if len(errs.errors) > before:
        return None
    source = f"{file}:{line_of(rnode)}"
    if raw.record:
        return RecordingRule(record=raw.record, expr=raw.expr, labels=raw.labels, source=source)
    return AlertingRule(
        name=raw.alert,
        expr=raw.expr,
        for_s=raw.for_ms / 1000,
        keep_firing_for_s=raw.keep_firing_for_ms / 1000,
        labels=raw.labels,
        annotations=raw.annotations,
        source=source,
    )


def validate_rule(raw: _RawRule, rnode: yaml.Node) -> list[tuple[str, yaml.Node]]:
    """Prometheus' rulefmt Rule.Validate: (message, node to point at) for each problem."""
    out: list[tuple[str, yaml.Node]] = []
    record_node = raw.nodes.get("record", raw.nodes.get("alert", rnode))
    if raw.record and raw.alert:
        out.append(("only one of 'record' and 'alert' must be set", record_node))
    if not raw.record and not raw.alert:
        out.append(("one of 'record' or 'alert' must be set", rnode))
    if not raw.expr:
        out.append(("field 'expr' must be set in rule", raw.nodes.get("expr", rnode)))
    else:
        problem = expr_problem(raw.expr)
        if problem:
            out.append((f"could not parse expression: {problem}", raw.nodes["expr"]))
    if raw.record:
        if raw.annotations:
            out.append(("invalid field 'annotations' in recording rule", record_node))
        if raw.for_ms:
            out.append(("invalid field 'for' in recording rule", record_node))
        if raw.keep_firing_for_ms:
            out.append(("invalid field 'keep_firing_for' in recording rule", record_node))
        if not METRIC_NAME_RE.fullmatch(raw.record):
            out.append((f"invalid recording rule name: {raw.record}", record_node))
    labels_node = raw.nodes.get("labels", rnode)
    for name in raw.labels:
        if not LABEL_NAME_RE.fullmatch(name) or name == "__name__":
            out.append((f"invalid label name: {name}", labels_node))
    annotations_node = raw.nodes.get("annotations", rnode)
    for name in raw.annotations:
        if not LABEL_NAME_RE.fullmatch(name):
            out.append((f"invalid annotation name: {name}", annotations_node))
    if raw.alert:
        for kind, texts, node in (
            ("label", raw.labels, labels_node),
            ("annotation", raw.annotations, annotations_node),
        ):
            for name, text in texts.items():
                try:
                    template.check(text)
                except template.TemplateError as e:
                    out.append((f"{kind} {name!r}: template: {e}", node))
    return out


def expr_problem(expr: str) -> str | None:
    """Why `expr` is not a PromQL expression, or None."""
    try:
        promql_parser.parse(expr)
    except (ValueError, TypeError) as e:
        return str(e) or "invalid expression"
    return None
