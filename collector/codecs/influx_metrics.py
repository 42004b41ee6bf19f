"""Influx line protocol points -> Prometheus-model samples, as Telegraf's Prometheus output maps them.

Each numeric field becomes a series `<measurement>_<field>` (names sanitised the Prometheus way),
with the tags as labels plus the write's own label (`db` for the v1 API, `bucket` for v2). Integer,
unsigned and float fields become samples; booleans 1 and 0. String fields are not samples: they are
counted as skipped (they reach InfluxDB unchanged through the forwarder). Sample timestamps are
milliseconds, the Prometheus unit, so nanoseconds below the millisecond are dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.codecs.line_protocol import Points
from collector.codecs.prom_naming import MetricKind, label_name, metric_name
from collector.model import MetricBatch, MetricMetadata


@dataclass
class InfluxSamples:
    batch: MetricBatch = field(default_factory=MetricBatch)
    samples: int = 0
    skipped_strings: int = 0


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
            name = metric_name(f"{measurement}_{fld}", "", MetricKind.GAUGE) or "_"
            names[key] = name
            if name not in batch.metadata:
                batch.metadata[name] = MetricMetadata(name, "gauge", "", "")
        labels = label_sets.get(id(tags))
        if labels is None:
            labels = {label_name(k): v for k, v in tags.items() if v != ""}
            labels.update(extra_labels)
            label_sets[id(tags)] = labels
        sample_labels = {**labels, "__name__": name}
        number = float(value) if kind != "bool" else (1.0 if value else 0.0)
        batch.add_sample(sample_labels, ts // 1_000_000, number)
        out.samples += 1
    return out
