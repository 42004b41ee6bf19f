"""Line protocol bodies -> numeric sample columns: the C scanner for plain lines, the exact parser for the rest.

The C scanner (_lp_fast.c) reads the lines with no escapes, quotes or anything unusual in one pass
and hands back the numbers of all the other lines, which `line_protocol.parse_numbered_lines` parses
exactly (so every error and every unusual line is judged by the one reference parser). Both sets of
rows are merged back into line order. Without the extension, every line takes the Python parser.

The result is what the Prometheus mapping needs: one row per numeric or boolean field value, each
naming its (series, field) pair by an id that the C scanner keeps stable from one body to the next,
so the mapping to labels and fingerprints is done once per pair, with the field's type as written
(`kind`, a KIND_CODES number) and its line. String values are not rows: they are listed apart
(`strings`), so their type can still be checked against the other writes of the field. The values
are float64; the few integers a double cannot hold (beyond 2**53) come along exactly beside them
(`exact_row`, `exact_value`), which costs the common rows nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from collector.codecs.line_protocol import (
    KIND_BOOL,
    KIND_FLOAT,
    KIND_INT,
    KIND_STRING,
    KIND_UINT,
    LineError,
    Points,
    parse_numbered_lines,
    receipt_time,
)

try:
    from collector.codecs import _lp_fast  # type: ignore[attr-defined]
except ImportError:  # not built (no C compiler): the Python parser reads every line
    _lp_fast = None

# A series as written: the raw `measurement,tags` bytes (C scanner lines, which have no escapes), or
# (measurement, ((tag key, tag value), ...)) as parsed (Python parser lines). Two spellings of one
# series (tags reordered, or one escaped) are two keys with the same labels.
SeriesKey = bytes | tuple[str, tuple[tuple[str, str], ...]]

# A field's type as a small number (the `kind` column; the C scanner uses the same numbers), and
# the names InfluxDB gives the types (`SHOW FIELD KEYS`, its field type conflict messages).
KIND_CODES: dict[str, int] = {KIND_FLOAT: 0, KIND_INT: 1, KIND_UINT: 2, KIND_BOOL: 3, KIND_STRING: 4}
CODE_STRING = KIND_CODES[KIND_STRING]
INFLUX_TYPE_NAMES: tuple[str, ...] = ("float", "integer", "unsigned", "boolean", "string")
CODE_INT = KIND_CODES[KIND_INT]
DOUBLE_EXACT_LIMIT = 2**53  # every integer up to this magnitude is exactly a double

# The C scanner's exact values: (row, the value's 64 bits) per integer a double rounds.
_EXACT_PAIR = np.dtype([("row", np.int64), ("bits", np.uint64)])


@dataclass
class LineColumns:
    """Numeric samples of a body, one row per (line, numeric or boolean field), in body order.

    Each row names its (series key, field key) pair by `pair_id`: an id >= 0 indexes `pairs`, the
    LineScanner's registry, where the id stays the same from body to body within one `generation`
    (so callers can keep per-pair results in arrays); an id < 0 is -1 - an index into
    `local_pairs`, the pairs of the lines the Python parser read. `value` is float64 (booleans 1.0
    and 0.0, integers rounded to the nearest double); `kind` uint8, the field's type as written (a
    KIND_CODES number, never CODE_STRING); `timestamp_ns` int64, already scaled by the precision;
    `line` int32, the row's 1-based line number. `strings` holds the string fields, which are not
    rows: (line number, local pair index, as a negative pair_id would give it), in body order.
    `lines`, `untimed` and `received` mean what they mean in Points. `exact_row` (int64, ascending)
    are the rows of the integer and unsigned values that `value` holds only rounded (beyond 2**53 in
    magnitude, more than 53 significant bits), `exact_value` those values as written, in that order.
    """

    pair_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    value: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    timestamp_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    pairs: list[tuple[bytes, str]] = field(default_factory=list)
    generation: int = -1
    local_pairs: list[tuple[SeriesKey, str]] = field(default_factory=list)
    lines: int = 0
    untimed: list[int] = field(default_factory=list)
    received: int = 0
    strings: list[tuple[int, int]] = field(default_factory=list)
    exact_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    exact_value: list[int] = field(default_factory=list)

    @property
    def skipped_strings(self) -> int:
        return len(self.strings)

    @property
    def rows(self) -> int:
        return len(self.value)


def c_scanner_available() -> bool:
    return _lp_fast is not None


def series_key_tags(key: SeriesKey) -> tuple[str, dict[str, str]]:
    """The measurement and the tags (in written order) of a series key."""
    if isinstance(key, tuple):
        return key[0], dict(key[1])
    # A C scanner key: plain ASCII, no escapes, tags already checked (valid_series_key in C).
    measurement, *pairs = key.decode("ascii").split(",")
    return measurement, dict(pair.split("=", 1) for pair in pairs)


class LineScanner:
    """Parses bodies into LineColumns: the C scanner for plain lines, the exact parser for the rest.

    Keeps the C scanner's pair registry (bounded by `max_entries`, see _lp_fast.c) across bodies.
    Thread-safe: decode threads share one. It does not travel between processes: a pickled copy
    starts empty. use_c=False (or no extension built) reads every line with the Python parser.
    """

    def __init__(self, max_entries: int = 1_000_000, use_c: bool = True) -> None:
        self._max_entries = max_entries
        self._use_c = use_c and _lp_fast is not None
        self._scanner = _lp_fast.Scanner(max_entries) if self._use_c else None
        self._pairs: list[tuple[bytes, str]] = []
        self._generation = -1
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[LineScanner], tuple[int, bool]]:
        return LineScanner, (self._max_entries, self._use_c)

    def parse(
        self, body: bytes, precision: str = "ns", now_ns: int | None = None
    ) -> tuple[LineColumns, list[LineError]]:
        """The same points and errors as parse_lines, as columns. Raises ValueError only for an
        unknown precision."""
        scale, default_ns = receipt_time(precision, now_ns)
        if self._scanner is None:
            points, errors = parse_numbered_lines(list(enumerate(body.split(b"\n"), 1)), scale, default_ns)
            return points_to_columns(points), errors
        with self._lock:  # the registry must hold every id the scanner hands out before anyone reads it
            (generation, new_pairs, pair_id, value, kind, ts, line, fallback, untimed, accepted, exact) = (
                self._scanner.parse(bytes(body), scale, default_ns)
            )
            if generation != self._generation:
                self._generation, self._pairs = generation, []  # a new list: older columns keep theirs
            if new_pairs and new_pairs[0][0] != len(self._pairs):  # ids are handed out in sequence
                raise RuntimeError(f"pair registry out of step: id {new_pairs[0][0]}, {len(self._pairs)} known")
            self._pairs.extend((key, fld.decode("ascii")) for _, key, fld in new_pairs)
            pairs = self._pairs
        cols = LineColumns(
            pair_id=np.frombuffer(pair_id, np.int32).astype(np.int64),
            value=np.frombuffer(value, np.float64),
            kind=np.frombuffer(kind, np.uint8),
            timestamp_ns=np.frombuffer(ts, np.int64),
            line=np.frombuffer(line, np.int32),
            pairs=pairs,
            generation=generation,
            lines=accepted,
            untimed=untimed,
            received=default_ns // scale,
        )
        if exact:  # rare: integers past 2**53 that the double rounds
            cols.exact_row, cols.exact_value = _exact_from_bits(np.frombuffer(exact, _EXACT_PAIR), cols.kind)
        if not fallback:
            return cols, []
        raw = body.split(b"\n")
        points, errors = parse_numbered_lines([(n, raw[n - 1]) for n in fallback], scale, default_ns)
        return _merge(cols, points), errors


def _exact_from_bits(pairs: np.ndarray, kind: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The C scanner's (row, bits) pairs as rows and Python ints: bits are two's complement for an
    integer field, plain for an unsigned one."""
    rows = pairs["row"].copy()
    signed = kind[rows] == CODE_INT
    values = [
        bits - (1 << 64) if is_signed and bits >= 1 << 63 else bits
        for bits, is_signed in zip(pairs["bits"].tolist(), signed.tolist(), strict=True)
    ]
    return rows, values


def points_to_columns(points: Points) -> LineColumns:
    """The numeric rows of parsed points as columns, all with local pair ids (strings listed apart)."""
    cols = LineColumns(lines=points.lines, untimed=list(points.untimed), received=points.received)
    local: dict[tuple[SeriesKey, str], int] = {}
    ids: list[int] = []
    values: list[float] = []
    kinds: list[int] = []
    stamps: list[int] = []
    numbers: list[int] = []
    exact_rows: list[int] = []
    exact_values: list[int] = []
    last_tags: dict[str, str] | None = None
    last_key: SeriesKey = b""
    for measurement, tags, fld, kind, value, ts, number in zip(
        points.measurement,
        points.tags,
        points.field,
        points.kind,
        points.value,
        points.timestamp_ns,
        points.line,
        strict=True,
    ):
        if tags is not last_tags:  # the rows of one line share their tags dict
            last_tags, last_key = tags, (measurement, tuple(tags.items()))
        pair = local.setdefault((last_key, fld), len(local))
        if kind == KIND_STRING:
            cols.strings.append((number, pair))
            continue
        if (
            kind in (KIND_INT, KIND_UINT)
            and not -DOUBLE_EXACT_LIMIT <= value <= DOUBLE_EXACT_LIMIT
            and float(value) != value  # int == float compares exactly in Python
        ):
            exact_rows.append(len(ids))
            exact_values.append(int(value))
        ids.append(-1 - pair)
        values.append((1.0 if value else 0.0) if kind == KIND_BOOL else float(value))
        kinds.append(KIND_CODES[kind])
        stamps.append(ts)
        numbers.append(number)
    cols.local_pairs = list(local)
    cols.pair_id = np.array(ids, np.int64)
    cols.value = np.array(values, np.float64)
    cols.kind = np.array(kinds, np.uint8)
    cols.timestamp_ns = np.array(stamps, np.int64)
    cols.line = np.array(numbers, np.int32)
    cols.exact_row = np.array(exact_rows, np.int64)
    cols.exact_value = exact_values
    return cols


def _merge(cols: LineColumns, points: Points) -> LineColumns:
    """The C scanner's rows and the Python parser's (of the fallback lines) together, in line order."""
    py = points_to_columns(points)
    # C rows and Python rows are each in line order, and a line's rows all come from one side: a
    # stable sort on the line number interleaves them as one parse would have produced them.
    order = np.argsort(np.concatenate([cols.line, py.line]), kind="stable")
    if len(cols.exact_row) or len(py.exact_row):  # rare: where the rows with exact values went
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        moved = position[np.concatenate([cols.exact_row, py.exact_row + len(cols.line)])]
        by_row = np.argsort(moved, kind="stable")
        values = cols.exact_value + py.exact_value
        cols.exact_row, cols.exact_value = moved[by_row], [values[i] for i in by_row.tolist()]
    cols.pair_id = np.concatenate([cols.pair_id, py.pair_id])[order]
    cols.value = np.concatenate([cols.value, py.value])[order]
    cols.kind = np.concatenate([cols.kind, py.kind])[order]
    cols.timestamp_ns = np.concatenate([cols.timestamp_ns, py.timestamp_ns])[order]
    cols.line = np.concatenate([cols.line, py.line])[order]
    cols.local_pairs = py.local_pairs
    cols.lines += points.lines
    cols.untimed = sorted(cols.untimed + points.untimed)
    cols.strings = py.strings
    return cols
