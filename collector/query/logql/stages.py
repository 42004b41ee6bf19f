"""A log pipeline run over one entry at a time: line filters, parsers, label filters, formats, drop/keep.

Labels are a flat dict; parsed labels that collide with an existing one get the suffix `_extracted`, and
a parse or conversion failure adds `__error__` (JSONParserErr, LogfmtParserErr, LabelFilterErr) and keeps
the entry, as Loki does. The extractors beyond json and logfmt live in extractors.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from collector.query.logql.ast import (
    Decolorize,
    DropKeep,
    LabelAnd,
    LabelComparison,
    LabelFilter,
    LabelFormat,
    LabelOr,
    LabelPredicate,
    LineFilter,
    LineFormat,
    Parser,
    Stage,
)
from collector.query.logql.extractors import PatternExtractor, RegexpExtractor, decolorize, unpack
from collector.query.logql.lexer import bytes_value, duration_ns
from collector.query.logql.line_filters import addresses, ip_range, line_filter
from collector.query.logql.regex import compile_go
from collector.query.logql.template_functions import TemplateExecError
from collector.query.logql.templates import Template

Labels = dict[str, str]
# One compiled stage: (line, labels, timestamp ns) -> (line, labels), or None when the entry is dropped.
StageFn = Callable[[str, Labels, int], "tuple[str, Labels] | None"]

_INVALID_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_]")
_LOGFMT_PAIR = re.compile(r'\s*([^\s=]+)(?:=("(?:[^"\\]|\\.)*"|\S*))?')


def sanitize_label(name: str) -> str:
    """A label name Prometheus accepts: other characters become `_`, and a leading digit gets one."""
    name = _INVALID_LABEL_CHARS.sub("_", name)
    return "_" + name if name[:1].isdigit() else name


def _add_parsed(labels: Labels, parsed: Sequence[tuple[str, str]]) -> None:
    for key, value in parsed:
        name = sanitize_label(key)
        if not name:
            continue
        if name in labels:
            name += "_extracted"
        labels[name] = value


def _json_pairs(value: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    # Nested objects flatten with `_`; arrays are skipped, as Loki's json parser does without parameters.
    for key, item in value.items():
        name = f"{prefix}_{key}" if prefix else key
        if isinstance(item, dict):
            _json_pairs(item, name, out)
        elif isinstance(item, list):
            continue
        elif isinstance(item, bool):
            out.append((name, "true" if item else "false"))
        elif item is None:
            out.append((name, ""))
        elif isinstance(item, float) and item.is_integer() and abs(item) < 1e15:
            out.append((name, repr(item)))
        else:
            out.append((name, str(item)))


def parse_json(line: str) -> list[tuple[str, str]] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    out: list[tuple[str, str]] = []
    _json_pairs(value, "", out)
    return out


def parse_logfmt(line: str) -> list[tuple[str, str]] | None:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line):
        m = _LOGFMT_PAIR.match(line, pos)
        if m is None or m.end() == pos:
            if line[pos:].strip():
                return None
            break
        key, raw = m.group(1), m.group(2)
        if raw is None:
            value = ""
        elif raw.startswith('"'):
            try:
                value = json.loads(raw)
            except ValueError:
                return None
        else:
            value = raw
        out.append((key, value))
        pos = m.end()
    return out


def _to_number(comparison: LabelComparison, text: str) -> float:
    if comparison.kind == "duration":
        return duration_ns(text) / 1e9
    if comparison.kind == "bytes":
        try:
            return float(text)
        except ValueError:
            return bytes_value(text)
    return float(text)


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def predicate(p: LabelPredicate) -> Callable[[Labels], bool | None]:
    """True/False, or None when a numeric comparison met a value that is not a number (LabelFilterErr)."""
    if isinstance(p, LabelAnd):
        left, right = predicate(p.left), predicate(p.right)

        def both(labels: Labels) -> bool | None:
            a = left(labels)
            if a is False:
                return False
            b = right(labels)
            return None if a is None or b is None else b

        return both
    if isinstance(p, LabelOr):
        left, right = predicate(p.left), predicate(p.right)

        def either(labels: Labels) -> bool | None:
            a = left(labels)
            if a is True:
                return True
            b = right(labels)
            return None if a is None and b is not True else b

        return either
    return _comparison(p)


def _comparison(c: LabelComparison) -> Callable[[Labels], bool | None]:
    if c.kind == "ip":
        contains = ip_range(str(c.value))
        wanted = c.op == "="
        return lambda labels: any(contains(a) for a in addresses(labels.get(c.name, ""))) == wanted
    if c.kind == "string":
        target = str(c.value)
        if c.op in ("=", "=="):
            return lambda labels: labels.get(c.name, "") == target
        if c.op == "!=":
            return lambda labels: labels.get(c.name, "") != target
        pattern = compile_go(target)
        if c.op == "=~":
            return lambda labels: pattern.fullmatch(labels.get(c.name, "")) is not None
        return lambda labels: pattern.fullmatch(labels.get(c.name, "")) is None
    compare = _NUMERIC_OPS[c.op]
    bound = float(c.value)

    def numeric(labels: Labels) -> bool | None:
        try:
            return compare(_to_number(c, labels.get(c.name, "")), bound)
        except ValueError:
            return None

    return numeric


def compile_stage(stage: Stage) -> StageFn:
    if isinstance(stage, LineFilter):
        test = line_filter(stage)
        return lambda line, labels, _ts: (line, labels) if test(line) else None
    if isinstance(stage, Parser):
        return _parser(stage)
    if isinstance(stage, Decolorize):
        return lambda line, labels, _ts: (decolorize(line), labels)
    if isinstance(stage, LabelFilter):
        test_labels = predicate(stage.predicate)

        def label_filter(line: str, labels: Labels, _ts: int) -> tuple[str, Labels] | None:
            verdict = test_labels(labels)
            if verdict is None:
                labels["__error__"] = "LabelFilterErr"
                return line, labels
            return (line, labels) if verdict else None

        return label_filter
    if isinstance(stage, LineFormat):
        return _line_format(stage)
    if isinstance(stage, LabelFormat):
        return _label_format(stage)
    return _drop_keep(stage)


def _parser(stage: Parser) -> StageFn:
    if stage.kind == "unpack":

        def unpacker(line: str, labels: Labels, _ts: int) -> tuple[str, Labels]:
            found = unpack(line)
            if found is None:
                labels["__error__"] = "JSONParserErr"
                return line, labels
            pairs, entry = found
            _add_parsed(labels, pairs)
            return (line if entry is None else entry), labels

        return unpacker
    extract: Callable[[str], list[tuple[str, str]] | None]
    error = ""
    if stage.kind == "regexp":
        extract = RegexpExtractor(stage.param)
    elif stage.kind == "pattern":
        extract = PatternExtractor(stage.param)
    elif stage.kind == "json":
        extract, error = parse_json, "JSONParserErr"
    else:
        extract, error = parse_logfmt, "LogfmtParserErr"

    def parser(line: str, labels: Labels, _ts: int) -> tuple[str, Labels]:
        parsed = extract(line)
        if parsed is None:
            labels["__error__"] = error
        else:
            _add_parsed(labels, parsed)
        return line, labels

    return parser


def _template_failed(labels: Labels, exc: TemplateExecError) -> None:
    labels["__error__"] = "TemplateFormatErr"
    labels["__error_details__"] = str(exc)


def _line_format(stage: LineFormat) -> StageFn:
    template = Template(stage.template)

    def line_format(line: str, labels: Labels, ts: int) -> tuple[str, Labels]:
        try:
            return template.render(line, labels, ts), labels
        except TemplateExecError as exc:
            _template_failed(labels, exc)  # Loki keeps the line as it was
            return line, labels

    return line_format


def _label_format(stage: LabelFormat) -> StageFn:
    templates = {dst: Template(src) for dst, src, is_template in stage.assignments if is_template}

    def label_format(line: str, labels: Labels, ts: int) -> tuple[str, Labels]:
        before = dict(labels)  # every assignment sees the labels as they were before the stage
        for dst, src, is_template in stage.assignments:
            if not is_template:
                labels[dst] = before.get(src, "")
                if src != dst:
                    labels.pop(src, None)
                continue
            try:
                labels[dst] = templates[dst].render(line, before, ts)
            except TemplateExecError as exc:
                _template_failed(labels, exc)
        return line, labels

    return label_format


def _drop_keep(stage: DropKeep) -> StageFn:
    def selected(labels: Labels, name: str, value: str | None) -> bool:
        return name in labels and (value is None or labels[name] == value)

    def run(line: str, labels: Labels, _ts: int) -> tuple[str, Labels]:
        if stage.keep:
            kept = {n for n, v in stage.labels if selected(labels, n, v)}
            return line, {k: v for k, v in labels.items() if k in kept}
        for name, value in stage.labels:
            if selected(labels, name, value):
                del labels[name]
        return line, labels

    return run


class Pipeline:
    """The compiled stages of a log query; `run` returns the final (line, labels) or None when filtered out."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self._fns = [compile_stage(s) for s in stages]

    def run(self, line: str, labels: Labels, ts_ns: int) -> tuple[str, Labels] | None:
        current: tuple[str, Labels] | None = (line, dict(labels))
        for fn in self._fns:
            assert current is not None
            current = fn(current[0], current[1], ts_ns)
            if current is None:
                return None
        return current
