"""Prometheus names for OTLP metrics, units and attributes, as Prometheus' own OTLP receiver builds them.

The rules are the OpenTelemetry "Prometheus and OpenMetrics Compatibility" spec as implemented by
prometheus/otlptranslator (MetricNamer with suffixes, UnitNamer, LabelNamer, legacy-name escaping),
so a dashboard written against a Prometheus fed by OTLP finds the same names here. One deliberate
difference: a unit suffix the name already holds as consecutive tokens is not added again, also for
"per" units (the translator would turn `bytes_per_second` with unit `By/s` into
`bytes_per_second_per_second`).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from enum import StrEnum


class MetricKind(StrEnum):
    """What an OTLP metric becomes in Prometheus; it decides the type suffixes."""

    COUNTER = "counter"  # monotonic sum: `_total`
    GAUGE = "gauge"  # OTLP gauge: unit "1" gives `_ratio`
    UPDOWN_COUNTER = "updowncounter"  # non-monotonic sum: a Prometheus gauge, but no `_ratio`
    HISTOGRAM = "histogram"
    SUMMARY = "summary"

    @property
    def prometheus_type(self) -> str:
        """The TYPE of the family in Prometheus metadata."""
        return "gauge" if self is MetricKind.UPDOWN_COUNTER else self.value


# UCUM units (what OTel instruments declare) to the Prometheus base-unit words. Units not listed are
# used as written, after escaping. "TiBy" is "tebibytes": otlptranslator's legacy table said "tibibytes".
UNIT_WORDS: dict[str, str] = {
    # time
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    # bytes (UCUM spells the kilo prefix "k"; "KBy" is what the translator lists, keep both)
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tebibytes",
    "kBy": "kilobytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    # SI
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    # misc
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}

# The unit after "/" is singular: "By/s" is bytes_per_second.
PER_UNIT_WORDS: dict[str, str] = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}

METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# Splitting on everything but [a-zA-Z0-9:] (underscore included) replaces invalid characters with "_",
# collapses runs of "_" and drops leading and trailing ones in one go, as the translator does.
_NAME_SEPARATORS = re.compile(r"[^a-zA-Z0-9:]+")
_INVALID_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def _tokens(text: str) -> list[str]:
    return [t for t in _NAME_SEPARATORS.split(text) if t]


def _unit_tokens(unit: str) -> tuple[list[str], list[str]]:
    """(main unit tokens, per-unit tokens) of an OTel unit; annotations in {braces} count as no unit."""
    main, _, per = unit.partition("/")
    main, per = main.strip(), per.strip()
    main_tokens = [] if not main or "{" in main or "}" in main else _tokens(UNIT_WORDS.get(main, main))
    per_tokens = [] if not per or "{" in per or "}" in per else _tokens(PER_UNIT_WORDS.get(per, per))
    return main_tokens, (["per", *per_tokens] if per_tokens else [])


def _holds(tokens: list[str], run: list[str]) -> bool:
    """Whether `run` occurs as consecutive tokens of the name."""
    n = len(run)
    return any(tokens[i : i + n] == run for i in range(len(tokens) - n + 1))


def metric_name(name: str, unit: str, kind: MetricKind) -> str:
    """The Prometheus metric name of an OTLP metric: escaped, with unit and type suffixes.

    A counter's sample name (with `_total`); for histograms and summaries the family name, to which
    `_bucket`, `_sum` and `_count` are appended. "" when nothing valid is left of the name.
    """
    tokens = _tokens(name)
    if not tokens:
        return ""
    main, per = _unit_tokens(unit)
    # The translator skips a unit the name already mentions anywhere (`seconds_total` stays as is).
    if main and not _holds(tokens, main):
        tokens += main
    if per and not _holds(tokens, per):
        tokens += per
    if kind is MetricKind.COUNTER:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    # Only OTLP gauges: some receivers misuse "1" for counts of things on sums.
    if kind is MetricKind.GAUGE and unit == "1":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    out = "_".join(tokens)
    return "_" + out if out[0].isdigit() else out


def family_name(name: str, unit: str, kind: MetricKind) -> str:
    """The metric family name Prometheus metadata uses: the metric name without the `_total` suffix."""
    full = metric_name(name, unit, kind)
    return full.removesuffix("_total") if kind is MetricKind.COUNTER else full


def unit_name(unit: str) -> str:
    """The unit as Prometheus metadata names it: `s` -> seconds, `By/s` -> bytes_per_second, `1` -> ""."""
    main, per = _unit_tokens(unit)
    return "_".join(main + per)


def label_name(key: str) -> str:
    """The Prometheus label name of an attribute key; "" when the key cannot make one.

    Invalid characters become `_` (one each: unlike metric names, runs are not collapsed, as in the
    translator); a leading digit gets a `key_` prefix and a single leading `_` a `key` prefix, while
    `__` stays reserved-looking as the translator leaves it. A result of only underscores is refused.
    """
    if not key:
        return ""
    name = _INVALID_LABEL_CHAR.sub("_", key)
    if name[0].isdigit():
        name = "key_" + name
    elif name.startswith("_") and not name.startswith("__"):
        name = "key" + name
    return "" if not name.strip("_") else name


def format_label_float(value: float) -> str:
    """A float as `le` and `quantile` label text, like Go's strconv.FormatFloat(v, 'f', -1, 64).

    The shortest digits that read back as the same double, never an exponent, no trailing ".0":
    0.005 -> "0.005", 1.0 -> "1", 1e6 -> "1000000"; infinities as "+Inf"/"-Inf".
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
