"""Parse a Prometheus text exposition (format 0.0.4) or OpenMetrics 1.0 text body into samples and metadata.

The rules are those of Prometheus' `model/textparse` (promparse and openmetricsparse), so a body that
Prometheus would scrape parses here too and one it would refuse is refused, with the 1-based line number.
Where the two differ on purpose, the module says so at the place:

- 0.0.4 is lenient as Prometheus is: whitespace between tokens, blank lines and other `#` lines are
  allowed, the last newline may be missing, an unknown escape in a label value or help text (`\\t`) is
  kept as written. OpenMetrics is strict: single spaces, no blank lines, no `\\r`, only `# HELP`,
  `# TYPE`, `# UNIT` and a final `# EOF`, and a label value escape other than `\\\\`, `\\"` and `\\n`
  is an error (the spec allows no others).
- An exemplar is accepted on any OpenMetrics sample, as Prometheus does, not only on a counter's
  `_total` or a histogram's `_bucket`; 0.0.4 has no exemplars. The spec's 128-character limit on the
  exemplar's labels is not a parse error: `to_batch` drops such an exemplar, as Prometheus' storage does.
- A sample or `# TYPE` line names its family only by text; samples are not checked against the declared
  family (as in Prometheus), and `_created` samples are kept as ordinary samples.
- `untyped` (0.0.4) and a family with only `# HELP` are reported as type "unknown", as Prometheus does.
- OpenMetrics timestamps (float seconds) become milliseconds from their decimal text, truncated toward
  zero: Prometheus computes `int64(ts * 1000)` in float64, which can land one millisecond low.
- A label name given twice, or `__name__` as a label, is an error (Prometheus fails such a scrape too).
- `# HELP foo-bar x` is an error: the name must be followed by whitespace (promparse would drop the `-`
  and take "bar x" as the help text of `foo`).
- Quoted UTF-8 names are accepted in both formats: `{"my.metric", "label.name"="v"}` and
  `# HELP "my.metric" text`.

Label values are kept as exposed (`le="1"` stays "1"); empty values are dropped only by `to_batch`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from decimal import MAX_EMAX, MIN_EMIN, ROUND_DOWN, Context, Decimal, localcontext

from collector.model import MetricBatch, MetricMetadata, series_fingerprint

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text"

PROM_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
OPENMETRICS_TYPES = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
)

# The OpenMetrics limit on an exemplar's label names and values together, in characters (code points).
EXEMPLAR_MAX_LABEL_CHARS = 128

_INT64_MAX = 2**63 - 1
# Enough digits for any int64 millisecond count; ROUND_DOWN truncates toward zero as Go's int64() does.
_TIMESTAMP_CONTEXT = Context(prec=40, rounding=ROUND_DOWN, Emax=MAX_EMAX, Emin=MIN_EMIN)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# A double-quoted string with backslash escapes; group 1 is the text between the quotes, still escaped.
_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
_WHITESPACE = re.compile(r"[ \t]*")
_PROM_VALUE = re.compile(r"[^{ \t]+")
_OM_TOKEN = re.compile(r"[^ ]+")
_DIGITS = re.compile(r"[0-9]+")
# What Go's strconv.ParseFloat accepts once Prometheus has refused `_`, `p` and `P` (so no hex floats):
# decimal numbers, inf/infinity with an optional sign and an unsigned nan, in any letter case.
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:inf(?:inity)?)|(?i:nan)")
_ESCAPE = re.compile(r"\\(.)")
_COMMENT_0_0_4 = re.compile(r"#[ \t]+(HELP|TYPE)[ \t]+")
_COMMENT_OM = re.compile(r"# (HELP|TYPE|UNIT) ")

_PROM_LABEL_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_PROM_HELP_ESCAPES = {"\\": "\\", "n": "\n"}
_OM_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class Exemplar:
    """An OpenMetrics exemplar: labels in exposition order, value, timestamp in ms if given."""

    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp_ms: int | None


@dataclass(frozen=True)
class ScrapedSample:
    """One sample line: the name as exposed (`x_total`, `x_bucket`), labels in exposition order without
    `__name__`, the value, the explicit timestamp in ms if there is one, and an exemplar (OpenMetrics)."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp_ms: int | None
    exemplar: Exemplar | None
    key: str = ""  # the series text as written (name and labels), when parsed with a SeriesCache


@dataclass(frozen=True)
class Family:
    """Metadata of a metric family: the name in `# TYPE` (`foo` for OpenMetrics counter `foo_total`),
    type (counter, gauge, histogram, summary, unknown; OpenMetrics also gaugehistogram, stateset, info),
    help text with escapes resolved, and unit ("" unless OpenMetrics `# UNIT`)."""

    name: str
    type: str
    help: str
    unit: str


@dataclass
class Exposition:
    """A parsed body: samples in exposition order and the families its metadata lines declare."""

    samples: list[ScrapedSample]
    families: dict[str, Family]


class ExpositionError(ValueError):
    """A malformed body. `line` is 1-based; the message reads "line 7: <reason>"."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def is_openmetrics(content_type: str) -> bool:
    """Whether a Content-Type selects OpenMetrics text; anything else is read as 0.0.4."""
    return content_type.split(";", 1)[0].strip().lower() == OPENMETRICS_CONTENT_TYPE


@dataclass
class SeriesCache:
    """What one target's scrapes repeat, kept from scrape to scrape as Prometheus' scrape cache does.

    `parsed`: the series text of a sample line (the name and label set as written, up to the value) ->
    its name and labels; `final`: the same text -> the labels and fingerprint to_batch made of it, valid
    for `context` (the target labels and honor_labels). A cache belongs to one target and is not
    thread-safe; `trim` keeps it from growing past what the target exposes.
    """

    parsed: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    final: dict[str, tuple[dict[str, str], int]] = field(default_factory=dict)
    openmetrics: bool = False
    context: tuple[object, ...] = ()

    def trim(self, samples: int) -> None:
        """After a scrape of `samples` samples: forget everything if most entries are no longer used."""
        if len(self.parsed) > 2 * samples + 64 or len(self.final) > 2 * samples + 64:
            self.parsed.clear()
            self.final.clear()


def _series_key(line: str, pos: int) -> str:
    """The series text of the sample line starting at `pos`: through the last `}` when there is one
    (a value or timestamp never holds one), else the metric name; "" when it cannot be told this way."""
    close = line.rfind("}")
    if close >= pos:
        return line[pos : close + 1]
    if "{" in line:
        return ""  # an unterminated label set: the name alone would hide the error
    m = _METRIC_NAME.match(line, pos)
    return m.group() if m is not None else ""


def parse(body: bytes, content_type: str, cache: SeriesCache | None = None) -> Exposition:
    """Parse a scrape body; raises ExpositionError (and nothing else) on malformed input.

    With a `cache` (one per target), the series text of sample lines seen before is not parsed again;
    the result is the same as without it.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ExpositionError(body.count(b"\n", 0, e.start) + 1, "invalid UTF-8") from None
    om = is_openmetrics(content_type)
    if cache is not None and cache.openmetrics != om:  # the two formats read some series text differently
        cache.parsed.clear()
        cache.openmetrics = om
    parser = _Parser(openmetrics=om, cache=cache)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the terminating newline, not a blank line
    if parser.om:
        _parse_openmetrics(parser, lines)
    else:
        for number, line in enumerate(lines, 1):
            parser.line_0_0_4(line, number)
    return Exposition(parser.samples, parser.families)


def _parse_openmetrics(parser: _Parser, lines: list[str]) -> None:
    for number, line in enumerate(lines, 1):
        if "\r" in line:
            raise ExpositionError(number, "carriage return is not allowed in OpenMetrics")
        if line == "# EOF":
            if number < len(lines):
                raise ExpositionError(number + 1, "unexpected data after # EOF")
            return
        parser.line_openmetrics(line, number)
    raise ExpositionError(len(lines) + 1, "data does not end with # EOF")


def _unescape(text: str, escapes: dict[str, str], strict: bool, number: int, what: str) -> str:
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        out = escapes.get(m.group(1))
        if out is None:
            if strict:
                raise ExpositionError(number, f"invalid {what} escape {m.group()!r}")
            return m.group()
        return out

    # A lone backslash at the end (only help text can have one) matches nothing and is kept, as Prometheus does.
    return _ESCAPE.sub(one, text)


def _shown(text: str) -> str:
    """A token for an error message, cut short: a body can hold a megabyte on one line."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _parse_float(text: str, number: int, what: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise ExpositionError(number, f"invalid {what} {_shown(text)}")
    value = float(text)
    if math.isinf(value) and "n" not in text.lower():
        raise ExpositionError(number, f"{what} {_shown(text)} out of range")
    return value


def _om_timestamp_ms(text: str, number: int) -> int:
    seconds = _parse_float(text, number, "timestamp")
    if not math.isfinite(seconds) or abs(seconds) >= 9.2e15:
        raise ExpositionError(number, f"invalid timestamp {_shown(text)}")
    try:
        with localcontext(_TIMESTAMP_CONTEXT):
            return int(Decimal(text).scaleb(3).to_integral_value())
    except (ArithmeticError, ValueError):
        # Exponents beyond what decimal holds (`0e99999999999999999999`): the float is exact enough.
        return int(seconds * 1000)


class _Parser:
    """Line-at-a-time state: samples so far and family metadata."""

    def __init__(self, openmetrics: bool, cache: SeriesCache | None = None) -> None:
        self.om = openmetrics
        self.cache = cache
        self.samples: list[ScrapedSample] = []
        self.families: dict[str, Family] = {}

    # -- metadata ---------------------------------------------------------------------------------

    def line_0_0_4(self, line: str, number: int) -> None:
        start = _WHITESPACE.match(line).end()  # type: ignore[union-attr]  # matches the empty string
        if start == len(line):
            return  # blank line
        if line[start] != "#":
            self.samples.append(self._sample(line, start, number))
            return
        m = _COMMENT_0_0_4.match(line, start)
        if m is None:
            return  # any other comment
        name, pos = self._meta_name(line, m.end(), number, m.group(1))
        rest = line[pos:]
        if rest and rest[0] not in " \t":
            raise ExpositionError(number, f"expected whitespace after the metric name in {m.group(1)}")
        text = rest[1:]
        if m.group(1) == "TYPE":
            if text not in PROM_TYPES:
                raise ExpositionError(number, f"invalid metric type {_shown(text)}")
            self._set(name, type="unknown" if text == "untyped" else text)
        else:
            self._set(name, help=_unescape(text, _PROM_HELP_ESCAPES, False, number, "help text"))

    def line_openmetrics(self, line: str, number: int) -> None:
        if not line:
            raise ExpositionError(number, "empty line")
        if line[0] != "#":
            self.samples.append(self._sample(line, 0, number))
            return
        m = _COMMENT_OM.match(line)
        if m is None:
            raise ExpositionError(number, "invalid comment: only # HELP, # TYPE, # UNIT and # EOF are allowed")
        kind = m.group(1)
        name, pos = self._meta_name(line, m.end(), number, kind)
        rest = line[pos:]
        if rest and rest[0] != " ":
            raise ExpositionError(number, f"expected a space after the metric name in {kind}")
        text = rest[1:]
        if kind == "TYPE":
            if text not in OPENMETRICS_TYPES:
                raise ExpositionError(number, f"invalid metric type {_shown(text)}")
            self._set(name, type=text)
        elif kind == "UNIT":
            if text and not name.endswith("_" + text):
                raise ExpositionError(number, f"unit {_shown(text)} is not a suffix of metric {_shown(name)}")
            self._set(name, unit=text)
        else:
            # Help text: the spec allows only these escapes, but like Prometheus keep others as written.
            self._set(name, help=_unescape(text, _OM_ESCAPES, False, number, "help text"))

    def _meta_name(self, line: str, pos: int, number: int, kind: str) -> tuple[str, int]:
        m = _METRIC_NAME.match(line, pos)
        if m is not None:
            return m.group(), m.end()
        q = _QUOTED.match(line, pos)
        if q is not None:
            name = self._unescape_quoted(q.group(1), number, "metric name")
            if name:
                return name, q.end()
        raise ExpositionError(number, f"expected metric name after {kind}")

    def _set(self, name: str, **changes: str) -> None:
        family = self.families.get(name) or Family(name, "unknown", "", "")
        self.families[name] = replace(family, **changes)

    # -- samples ----------------------------------------------------------------------------------

    def _skip_ws(self, line: str, pos: int) -> int:
        if self.om:
            return pos
        return _WHITESPACE.match(line, pos).end()  # type: ignore[union-attr]  # matches the empty string

    def _unescape_quoted(self, text: str, number: int, what: str) -> str:
        if self.om:
            return _unescape(text, _OM_ESCAPES, True, number, what)
        return _unescape(text, _PROM_LABEL_ESCAPES, False, number, what)

    def _sample(self, line: str, pos: int, number: int) -> ScrapedSample:
        cache, key = self.cache, ""
        if cache is not None:
            key = _series_key(line, pos)
            hit = cache.parsed.get(key)
            if hit is not None:  # the same series text parses the same: only the value and time are new
                return self._rest(line, pos + len(key), number, hit[0], hit[1], key)
        start = pos
        name: str | None = None
        m = _METRIC_NAME.match(line, pos)
        if m is not None:
            name, pos = m.group(), m.end()
            pos = self._skip_ws(line, pos)
        labels: list[tuple[str, str]] = []
        braces = line.startswith("{", pos)
        if braces:
            name, pos = self._labels(line, pos + 1, number, name, labels, exemplar=False)
        if name is None:
            raise ExpositionError(number, "expected a metric name")
        sample = self._rest(line, pos, number, name, tuple(labels), key)
        # Cache only what was parsed to exactly the key's end (an exemplar's `}` can mislead the key).
        if cache is not None and key and (pos == start + len(key) if braces else "{" not in line):
            cache.parsed[key] = (name, sample.labels)
        return sample

    def _rest(
        self, line: str, pos: int, number: int, name: str, labels: tuple[tuple[str, str], ...], key: str
    ) -> ScrapedSample:
        if self.om:
            value, timestamp_ms, exemplar = self._om_rest(line, pos, number)
        else:
            value, timestamp_ms = self._prom_rest(line, pos, number)
            exemplar = None
        return ScrapedSample(name, labels, value, timestamp_ms, exemplar, key)

    def _prom_rest(self, line: str, pos: int, number: int) -> tuple[float, int | None]:
        """Value and optional integer ms timestamp, any whitespace between, as promlex tokenises them."""
        pos = self._skip_ws(line, pos)
        m = _PROM_VALUE.match(line, pos)
        if m is None:
            raise ExpositionError(number, "expected a value")
        value = _parse_float(m.group(), number, "value")
        pos = self._skip_ws(line, m.end())
        if pos == len(line):
            return value, None
        t = _DIGITS.match(line, pos)
        if t is None:
            raise ExpositionError(number, "expected a timestamp or the end of the line after the value")
        digits = t.group()
        if len(digits) > 19 or int(digits) > _INT64_MAX:
            raise ExpositionError(number, f"timestamp {_shown(digits)} out of range")
        if self._skip_ws(line, t.end()) != len(line):
            raise ExpositionError(number, "expected the end of the line after the timestamp")
        return value, int(digits)

    def _om_rest(self, line: str, pos: int, number: int) -> tuple[float, int | None, Exemplar | None]:
        """` value[ timestamp][ # {labels} value[ timestamp]]` with single spaces."""
        value_text, pos = self._om_token(line, pos, number, "value")
        value = _parse_float(value_text, number, "value")
        timestamp_ms: int | None = None
        if pos < len(line) and not line.startswith(" #", pos):
            ts_text, pos = self._om_token(line, pos, number, "timestamp")
            timestamp_ms = _om_timestamp_ms(ts_text, number)
        if pos == len(line):
            return value, timestamp_ms, None
        if not line.startswith(" # {", pos):
            raise ExpositionError(number, "expected an exemplar (' # {') or the end of the line")
        labels: list[tuple[str, str]] = []
        _, pos = self._labels(line, pos + 4, number, None, labels, exemplar=True)
        ex_text, pos = self._om_token(line, pos, number, "exemplar value")
        ex_value = _parse_float(ex_text, number, "exemplar value")
        ex_ts: int | None = None
        if pos < len(line):
            ex_ts_text, pos = self._om_token(line, pos, number, "exemplar timestamp")
            ex_ts = _om_timestamp_ms(ex_ts_text, number)
        if pos != len(line):
            raise ExpositionError(number, "expected the end of the line after the exemplar")
        return value, timestamp_ms, Exemplar(tuple(labels), ex_value, ex_ts)

    def _om_token(self, line: str, pos: int, number: int, what: str) -> tuple[str, int]:
        if not line.startswith(" ", pos):
            raise ExpositionError(number, f"expected a single space before the {what}")
        m = _OM_TOKEN.match(line, pos + 1)
        if m is None:
            raise ExpositionError(number, f"expected a {what}")
        return m.group(), m.end()

    def _labels(
        self, line: str, pos: int, number: int, name: str | None, out: list[tuple[str, str]], exemplar: bool
    ) -> tuple[str | None, int]:
        """Parse a label set from just after `{` to just after `}` into `out`; returns the metric name
        (a quoted name inside the braces sets it) and the position after `}`."""
        seen: set[str] = set()
        while True:
            pos = self._skip_ws(line, pos)
            if pos >= len(line):
                raise ExpositionError(number, "unterminated label set")
            if line[pos] == "}":
                return name, pos + 1
            if line[pos] == '"':
                q = _QUOTED.match(line, pos)
                if q is None:
                    raise ExpositionError(number, "unterminated quoted name")
                label = self._unescape_quoted(q.group(1), number, "name")
                pos = self._skip_ws(line, q.end())
                if pos < len(line) and line[pos] in ",}":
                    # A quoted string alone is the metric name (UTF-8 syntax).
                    if exemplar or name is not None:
                        raise ExpositionError(number, "unexpected metric name in label set")
                    if not label:
                        raise ExpositionError(number, "empty metric name")
                    name = label
                    if line[pos] == ",":
                        pos += 1
                    continue
                if not label:
                    raise ExpositionError(number, "empty label name")
            else:
                m = _LABEL_NAME.match(line, pos)
                if m is None:
                    raise ExpositionError(number, "expected a label name")
                label = m.group()
                pos = self._skip_ws(line, m.end())
            if not line.startswith("=", pos):
                raise ExpositionError(number, f"expected '=' after label name {_shown(label)}")
            pos = self._skip_ws(line, pos + 1)
            v = _QUOTED.match(line, pos)
            if v is None:
                what = "quoted label value" if not line.startswith('"', pos) else "terminated label value"
                raise ExpositionError(number, f"expected a {what} for label {_shown(label)}")
            value = self._unescape_quoted(v.group(1), number, "label value")
            if label in seen or (label == "__name__" and not exemplar):
                raise ExpositionError(number, f"label name {_shown(label)} is not unique")
            seen.add(label)
            out.append((label, value))
            pos = self._skip_ws(line, v.end())
            if line.startswith(",", pos):
                pos += 1  # a trailing comma before `}` is allowed
            elif not line.startswith("}", pos):
                raise ExpositionError(number, "expected ',' or '}' after a label value")


# -- to the collector's model ---------------------------------------------------------------------

EXPORTED_LABEL_PREFIX = "exported_"
_HEX = re.compile(r"[0-9a-fA-F]+")


def _series_labels(sample: ScrapedSample, target_labels: dict[str, str], honor_labels: bool) -> dict[str, str]:
    """Prometheus' mutateSampleLabels: merge target labels into the scraped ones. Empty values mean absent."""
    exposed = {k: v for k, v in sample.labels if v}
    out = {**exposed, "__name__": sample.name}
    if honor_labels:
        for k, v in target_labels.items():
            if k not in exposed and v:
                out[k] = v
    else:
        conflicts = [(k, exposed[k]) for k in target_labels if k in exposed]
        for k, v in target_labels.items():
            if v:
                out[k] = v
            else:
                out.pop(k, None)
        # Shorter names first, and `exported_` again while the name is taken, as Prometheus resolves them.
        for k, v in sorted(conflicts, key=lambda kv: len(kv[0])):
            new = k
            while True:
                new = EXPORTED_LABEL_PREFIX + new
                if not out.get(new):
                    out[new] = v
                    break
    return dict(sorted(out.items()))


def _id_label(labels: dict[str, str], key: str) -> str:
    """Move a hex id out of the exemplar labels, lowercased; a non-hex value stays a label and gives ""."""
    value = labels.get(key, "")
    if value and _HEX.fullmatch(value):
        del labels[key]
        return value.lower()
    return ""


def to_batch(
    exp: Exposition,
    target_labels: dict[str, str],
    scrape_ms: int,
    honor_labels: bool,
    cache: SeriesCache | None = None,
) -> MetricBatch:
    """The samples of one scrape as a MetricBatch.

    `target_labels` are the target's final labels (job, instance, ...). With `honor_labels` False a scraped
    label that clashes with one of them is renamed `exported_<name>`; with True the scraped value wins.
    Samples without a timestamp get `scrape_ms`; exemplars without one get their sample's. An exemplar
    over the OpenMetrics label-length limit is dropped, as Prometheus' exemplar storage refuses it.
    An exemplar's `trace_id` and `span_id` labels fill the id columns (lowercased) only when they are hex,
    as the model's ids are; any other value stays an exemplar label and the column gets "".
    With a `cache` (the one parse used), a series seen before reuses its labels and fingerprint.
    """
    batch = MetricBatch()
    final: dict[str, tuple[dict[str, str], int]] = {}
    if cache is not None:
        context = (tuple(target_labels.items()), honor_labels)
        if cache.context != context:
            cache.final.clear()
            cache.context = context
        final = cache.final
    series, fingerprints, timestamps, values = batch.series, batch.fingerprint, batch.timestamp_ms, batch.value
    for sample in exp.samples:
        hit = final.get(sample.key) if sample.key else None
        if hit is None:
            labels = _series_labels(sample, target_labels, honor_labels)
            fp = series_fingerprint(labels)
            if cache is not None and sample.key:
                final[sample.key] = (labels, fp)
        else:
            labels, fp = hit  # shared between scrapes' batches: nothing downstream changes a batch's labels
        if fp not in series:
            series[fp] = labels
        timestamp_ms = scrape_ms if sample.timestamp_ms is None else sample.timestamp_ms
        fingerprints.append(fp)
        timestamps.append(timestamp_ms)
        values.append(sample.value)
        ex = sample.exemplar
        if ex is None or sum(len(k) + len(v) for k, v in ex.labels) > EXEMPLAR_MAX_LABEL_CHARS:
            continue
        ex_labels = dict(ex.labels)
        trace_id = _id_label(ex_labels, "trace_id")
        span_id = _id_label(ex_labels, "span_id")
        ex_ms = timestamp_ms if ex.timestamp_ms is None else ex.timestamp_ms
        batch.add_exemplar(fp, ex_ms, ex.value, trace_id, span_id, ex_labels)
    for family in exp.families.values():
        batch.metadata[family.name] = MetricMetadata(family.name, family.type, family.help, family.unit)
    return batch
