"""Influx line protocol points -> Prometheus-model samples, as Telegraf's Prometheus output maps them.

Each numeric field becomes a series `<measurement>_<field>` (names sanitised the Prometheus way),
with the tags as labels plus the write's own label (`db` for the v1 API, `bucket` for v2). Integer,
unsigned and float fields become samples; booleans 1 and 0. String fields are not samples: they are
counted as skipped (they reach InfluxDB unchanged through the forwarder). Sample timestamps are
milliseconds, the Prometheus unit, so nanoseconds below the millisecond are dropped here.

`points_to_samples` maps parsed Points row by row: it is the reference. `columns_to_samples` maps
LineColumns with numpy and computes names, labels and fingerprints once per (series, field) pair
(with a SeriesMapper, once across writes): same samples, same series, same metadata. It also says,
per sample and per string field, which metric it belongs to and the field's type as written, for
the one-type-per-field rule InfluxDB enforces (pipeline/field_types.py). Integers that a float64
sample rounds (beyond 2**53) also come along exactly (SampleColumns.exact), for the native read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from collector.codecs.line_protocol import Points
from collector.codecs.line_protocol_columns import INFLUX_TYPE_NAMES, LineColumns, SeriesKey, series_key_tags
from collector.codecs.prom_naming import MetricKind, label_name, metric_name
from collector.model import ExactIntegers, MetricBatch, MetricMetadata, SampleColumns, series_fingerprint


@dataclass
class InfluxSamples:
    """The samples of a write, and (from columns_to_samples) what the field type rule needs.

    Per sample row of `batch` (same order): `metric`, an index into `metric_names`; `kind`, the
    field's type as written (a KIND_CODES number); `line`, its 1-based line. `strings`: the string
    fields, which are not samples, as (line, metric index). `columns`: what they were mapped from
    (for the measurement and field key of a row, see `field_of`).
    """

    batch: MetricBatch = field(default_factory=MetricBatch)
    samples: int = 0
    skipped_strings: int = 0
    metric: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    metric_names: list[str] = field(default_factory=list)
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    strings: list[tuple[int, int]] = field(default_factory=list)
    columns: LineColumns | None = None

    def field_of(self, row: int) -> tuple[str, str]:
        """(measurement, field key) of sample row `row`; row >= samples: string field row - samples."""
        assert self.columns is not None
        cols = self.columns
        pair = int(cols.pair_id[row]) if row < self.samples else -1 - cols.strings[row - self.samples][1]
        key, fld = cols.pairs[pair] if pair >= 0 else cols.local_pairs[-1 - pair]
        return series_key_tags(key)[0], fld


def points_to_samples(points: Points, extra_labels: dict[str, str]) -> InfluxSamples:
    out = InfluxSamples()
    batch = out.batch
    names: dict[tuple[str, str], str] = {}
    label_sets: dict[int, dict[str, str]] = {}  # id(tags dict) -> labels, shared by a line's fields
    for measurement, tags, fld, kind, value, ts in zip(
        points.measurement, points.tags, points.field, points.kind, points.value, points.timestamp_ns, strict=True
    ):
        if kind == "string":
            out.skipped_strings += 1
            continue
        key = (measurement, fld)
        name = names.get(key)
        if name is None:
            name = _name(measurement, fld)
            names[key] = name
            if name not in batch.metadata:
                batch.metadata[name] = MetricMetadata(name, "gauge", "", "")
        labels = label_sets.get(id(tags))
        if labels is None:
            labels = _labels(tags, extra_labels)
            label_sets[id(tags)] = labels
        sample_labels = {**labels, "__name__": name}
        number = float(value) if kind != "bool" else (1.0 if value else 0.0)
        batch.add_sample(sample_labels, ts // 1_000_000, number)
        out.samples += 1
    return out


def _name(measurement: str, fld: str) -> str:
    return metric_name(f"{measurement}_{fld}", "", MetricKind.GAUGE) or "_"


def _labels(tags: dict[str, str], extra_labels: dict[str, str]) -> dict[str, str]:
    labels = {label_name(k): v for k, v in tags.items() if v != ""}
    labels.update(extra_labels)
    return labels


# What a series of one write maps to: its fingerprint, its labels (with __name__) and metric name.
_Series = tuple[int, dict[str, str], str]
_CacheKey = tuple[SeriesKey, str, tuple[tuple[str, str], ...]]


class _BoundedCache:
    """(series key, field, extra labels) -> (fingerprint, labels, metric name), bounded by count.

    Two generations: lookups hit the current one or the previous one (and a hit there moves the
    entry forward); when the current one holds `max_entries // 2`, it becomes the previous one and
    the oldest is dropped. So series in use stay cached, memory stays bounded, and no lock is needed
    (single dict operations are atomic under the GIL; decode threads may share one cache, and at
    worst compute an entry twice). Entries are immutable by contract: callers never change the
    labels dicts they get.
    """

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._half = max(1, max_entries // 2)
        self._current: dict[_CacheKey, _Series] = {}
        self._previous: dict[_CacheKey, _Series] = {}

    def get(self, key: _CacheKey) -> _Series | None:
        hit = self._current.get(key)
        if hit is None:
            hit = self._previous.get(key)
            if hit is not None:
                self.put(key, hit)
        return hit

    def put(self, key: _CacheKey, value: _Series) -> None:
        if len(self._current) >= self._half:
            self._previous, self._current = self._current, {}
        self._current[key] = value


class _PairTable:
    """Scanner pair id -> fingerprint, labels and metric name, for one generation and extra labels."""

    def __init__(self) -> None:
        self.fp = np.zeros(0, np.uint64)
        self.filled = np.zeros(0, bool)
        self.labels: list[dict[str, str]] = []
        self.name: list[str] = []
        # Per pair, its metric name as an index into `names` (append-only for the table's life).
        self.name_code = np.zeros(0, np.int32)
        self.names: list[str] = []
        self._name_codes: dict[str, int] = {}
        # The last batch's distinct pairs and what they gave: consecutive writes from one client
        # mostly carry the same series, and then the same dicts serve again.
        self.last: tuple[np.ndarray, dict[int, dict[str, str]], dict[str, MetricMetadata]] | None = None

    def fill(self, ids: np.ndarray, pairs: list[tuple[bytes, str]], extra_labels: dict[str, str]) -> None:
        """Make sure every pair in `ids` is mapped (a Python loop only over those seen first)."""
        if len(self.fp) < len(pairs):
            grow = max(len(pairs), 2 * len(self.fp), 1024) - len(self.fp)  # doubling: amortised O(1) per pair
            self.fp = np.concatenate([self.fp, np.zeros(grow, np.uint64)])
            self.filled = np.concatenate([self.filled, np.zeros(grow, bool)])
            self.name_code = np.concatenate([self.name_code, np.zeros(grow, np.int32)])
            self.labels.extend([{}] * grow)
            self.name.extend([""] * grow)
        new = ids[~self.filled[ids]].tolist()
        if not new:
            return
        # Names and label sets are shared by many pairs (a series key has several fields, a metric
        # many series): each is worked out once per call.
        bases: dict[bytes, tuple[str, dict[str, str]]] = {}
        names: dict[tuple[str, str], str] = {}
        fps, labels_of, name_of = [], [], []
        for i in new:
            key, fld = pairs[i]
            base = bases.get(key)
            if base is None:
                measurement, tags = series_key_tags(key)
                base = bases[key] = (measurement, _labels(tags, extra_labels))
            name = names.get((base[0], fld))
            if name is None:
                name = names[(base[0], fld)] = _name(base[0], fld)
            labels = {**base[1], "__name__": name}
            fps.append(series_fingerprint(labels))
            labels_of.append(labels)
            name_of.append(name)
        codes = self._name_codes
        for name in names.values():
            if name not in codes:
                codes[name] = len(self.names)
                self.names.append(name)
        self.fp[new] = fps
        self.name_code[new] = [codes[name] for name in name_of]
        self.filled[new] = True
        for i, labels, name in zip(new, labels_of, name_of, strict=True):
            self.labels[i], self.name[i] = labels, name

    def series(self, ids: np.ndarray) -> tuple[dict[int, dict[str, str]], dict[str, MetricMetadata]]:
        """The series and metadata of the distinct pairs `ids` (ascending)."""
        if self.last is not None and np.array_equal(self.last[0], ids):
            return self.last[1], self.last[2]
        id_list = ids.tolist()
        labels = self.labels
        series = dict(zip(self.fp[ids].tolist(), [labels[i] for i in id_list], strict=True))
        names = dict.fromkeys(self.name[i] for i in id_list)
        metadata = {name: MetricMetadata(name, "gauge", "", "") for name in names}
        self.last = (ids, series, metadata)
        return series, metadata


def _map(key: SeriesKey, fld: str, extra_labels: dict[str, str]) -> _Series:
    measurement, tags = series_key_tags(key)
    name = _name(measurement, fld)
    labels = {**_labels(tags, extra_labels), "__name__": name}
    return series_fingerprint(labels), labels, name


class SeriesMapper:
    """Keeps, across writes, what each (series, field) pair maps to: its fingerprint, labels and name.

    Pairs the C scanner numbered are kept in arrays per (scanner generation, extra labels), so a
    write is mapped with array operations; pairs from lines the Python parser read go through a
    bounded cache. Thread-safe (decode threads share one); entries are immutable by contract:
    callers never change the labels dicts they get. A pickled copy starts empty.
    """

    def __init__(self, max_local_entries: int = 100_000, max_tables: int = 8) -> None:
        """max_tables: how many extra-label sets (db, rp, bucket) keep arrays; the least recently
        used is dropped past that (and rebuilt, pair by pair, if it comes back). Memory: about half
        a kilobyte per pair and extra-label set (its labels dict), the pairs bounded by the
        LineScanner's max_entries."""
        self._max_local = max_local_entries
        self._max_tables = max_tables
        self._tables: dict[tuple[int, tuple[tuple[str, str], ...]], _PairTable] = {}
        self._generation = -1
        self.local = _BoundedCache(max_local_entries)
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[SeriesMapper], tuple[int, int]]:
        return SeriesMapper, (self._max_local, self._max_tables)

    def map_pairs(
        self, cols: LineColumns, ids: np.ndarray, extra_labels: dict[str, str]
    ) -> tuple[np.ndarray, dict[int, dict[str, str]], dict[str, MetricMetadata], np.ndarray, list[str]]:
        """Fingerprints of the scanner pair ids `ids`, with the series and metadata they cover, and
        their metric names as indexes into a list of names (the table's own: read, never change it)."""
        present = np.zeros(len(cols.pairs), bool)
        present[ids] = True
        distinct = np.flatnonzero(present)
        with self._lock:
            if cols.generation != self._generation:  # the scanner forgot its pairs: so do we
                self._generation, self._tables = cols.generation, {}
            key = (cols.generation, tuple(extra_labels.items()))
            table = self._tables.pop(key, None) or _PairTable()
            self._tables[key] = table  # most recently used last
            if len(self._tables) > self._max_tables:
                del self._tables[next(iter(self._tables))]
            table.fill(distinct, cols.pairs, extra_labels)
            fps = table.fp[ids]
            series, metadata = table.series(distinct)
            # The list is append-only: a later fill may extend it, never changes what these index.
            return fps, series, metadata, table.name_code[ids], table.names


def columns_to_samples(
    cols: LineColumns, extra_labels: dict[str, str], mapper: SeriesMapper | None = None
) -> InfluxSamples:
    """The samples of `cols`, as points_to_samples maps them, with the samples as numpy columns."""
    mapper = SeriesMapper() if mapper is None else mapper
    out = InfluxSamples(
        skipped_strings=cols.skipped_strings, samples=cols.rows, kind=cols.kind, line=cols.line, columns=cols
    )
    if not cols.rows and not cols.strings:
        return out
    ids = cols.pair_id
    scanned = ids >= 0
    if cols.rows and scanned.all() and not cols.strings:
        fps, series, metadata, out.metric, out.metric_names = mapper.map_pairs(cols, ids, extra_labels)
    else:
        fps = np.zeros(len(ids), np.uint64)
        codes = np.zeros(len(ids), np.int32)
        names: list[str] = []
        series, metadata = {}, {}
        if scanned.any():
            fps[scanned], scanned_series, scanned_metadata, codes[scanned], table_names = mapper.map_pairs(
                cols, ids[scanned], extra_labels
            )
            names = list(table_names)
            series.update(scanned_series)
            metadata.update(scanned_metadata)
        code_of = {name: i for i, name in enumerate(names)}
        local = -1 - ids[~scanned]
        extra = tuple(extra_labels.items())
        local_fps = np.zeros(len(cols.local_pairs), np.uint64)
        local_codes = np.zeros(len(cols.local_pairs), np.int32)
        for i in np.unique(local).tolist():
            key, fld = cols.local_pairs[i]
            hit = mapper.local.get((key, fld, extra))
            if hit is None:
                hit = _map(key, fld, extra_labels)
                mapper.local.put((key, fld, extra), hit)
            fp, labels, name = hit
            local_fps[i] = fp
            local_codes[i] = code_of.setdefault(name, len(code_of))
            series.setdefault(fp, labels)
            metadata.setdefault(name, MetricMetadata(name, "gauge", "", ""))
        fps[~scanned] = local_fps[local]
        codes[~scanned] = local_codes[local]
        for number, pair in cols.strings:  # string fields: a metric name only, for the type rule
            key, fld = cols.local_pairs[pair]
            out.strings.append((number, code_of.setdefault(_name(series_key_tags(key)[0], fld), len(code_of))))
        out.metric, out.metric_names = codes, list(code_of)
    samples = SampleColumns(fps, cols.timestamp_ns // 1_000_000, cols.value)  # floor division, as Python's //
    if cols.exact_value:  # rare: a sample row is a column row, so the rows carry over as they are
        kinds = cols.kind[cols.exact_row].tolist()
        samples.exact = ExactIntegers(cols.exact_row, list(cols.exact_value), [INFLUX_TYPE_NAMES[k] for k in kinds])
    out.batch = MetricBatch.from_columns(series, samples, metadata)
    return out
