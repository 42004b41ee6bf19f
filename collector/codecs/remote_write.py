"""Prometheus remote write 1.0: snappy-block + protobuf `WriteRequest` bytes -> MetricBatch.

The message classes are built from a descriptor written here (the prompb field numbers) in a
private descriptor pool, so nothing is registered globally and no generated code is vendored.
Native histograms (TimeSeries field 4) have no place in the classic series model yet: such series
are refused and counted. Stale markers (the NaN 0x7ff0000000000002) are kept bit for bit.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from collector.codecs.otlp_values import Rejections
from collector.errors import PermanentError
from collector.model import MetricBatch, MetricMetadata, format_series, series_fingerprint

_TYPES = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset")
_F = descriptor_pb2.FieldDescriptorProto


def _message(file: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
    msg = file.message_type.add(name=name)
    for fname, number, ftype, label, type_name in fields:
        f = msg.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name


@cache
def _classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(name="observatory_prompb.proto", package="prometheus", syntax="proto3")
    opt, rep = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    _message(file, "Label", [("name", 1, _F.TYPE_STRING, opt, ""), ("value", 2, _F.TYPE_STRING, opt, "")])
    _message(file, "Sample", [("value", 1, _F.TYPE_DOUBLE, opt, ""), ("timestamp", 2, _F.TYPE_INT64, opt, "")])
    _message(
        file,
        "Exemplar",
        [
            ("labels", 1, _F.TYPE_MESSAGE, rep, ".prometheus.Label"),
            ("value", 2, _F.TYPE_DOUBLE, opt, ""),
            ("timestamp", 3, _F.TYPE_INT64, opt, ""),
        ],
    )
    _message(
        file,
        "TimeSeries",
        [
            ("labels", 1, _F.TYPE_MESSAGE, rep, ".prometheus.Label"),
            ("samples", 2, _F.TYPE_MESSAGE, rep, ".prometheus.Sample"),
            ("exemplars", 3, _F.TYPE_MESSAGE, rep, ".prometheus.Exemplar"),
            ("histograms", 4, _F.TYPE_BYTES, rep, ""),  # native histograms: only counted
        ],
    )
    _message(
        file,
        "MetricMetadata",
        [
            ("type", 1, _F.TYPE_INT32, opt, ""),
            ("metric_family_name", 2, _F.TYPE_STRING, opt, ""),
            ("help", 4, _F.TYPE_STRING, opt, ""),
            ("unit", 5, _F.TYPE_STRING, opt, ""),
        ],
    )
    _message(
        file,
        "WriteRequest",
        [
            ("timeseries", 1, _F.TYPE_MESSAGE, rep, ".prometheus.TimeSeries"),
            ("metadata", 3, _F.TYPE_MESSAGE, rep, ".prometheus.MetricMetadata"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in ("WriteRequest", "TimeSeries", "Label", "Sample", "Exemplar", "MetricMetadata")
    }


def write_request_class() -> Any:
    """The WriteRequest message class (for tests and the forwarder's encoder)."""
    return _classes()["WriteRequest"]


def decompress_snappy(body: bytes, limit: int) -> bytes:
    """Snappy block format; the declared length is checked against `limit` before inflating."""
    declared, shift = 0, 0
    for i, b in enumerate(body[:10]):
        declared |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
        if i == 9:
            raise PermanentError("body is not snappy block data: bad length header", reason="encoding")
    if declared > limit:
        raise PermanentError(
            f"remote write body declares {declared} bytes, over the limit of {limit}", status=413, reason="too_large"
        )
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise PermanentError(f"body is not snappy block data: {exc}", reason="encoding") from None


def decode_write_request(data: bytes) -> tuple[MetricBatch, Rejections, int]:
    """(batch, refused series with reasons, accepted samples) from a decompressed WriteRequest."""
    request = _classes()["WriteRequest"]()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise PermanentError(f"malformed remote write protobuf: {exc}", reason="malformed") from None
    batch = MetricBatch()
    rejected = Rejections()
    accepted = 0
    for i, ts in enumerate(request.timeseries):
        labels: dict[str, str] = {}
        problem = ""
        for label in ts.labels:
            if not label.name:
                problem = "a label has an empty name"
            elif label.name in labels:
                problem = f"label {label.name!r} appears twice"
            elif label.value:  # an empty value is the same as no label
                labels[label.name] = label.value
        if not problem and "__name__" not in labels:
            problem = "no __name__ label"
        if not problem and len(ts.histograms):
            problem = "native histograms are not supported"
        if problem:
            rejected.add(f"timeseries[{i}] {format_series(labels)}", problem)
            continue
        if not ts.samples:
            continue
        fp = series_fingerprint(labels)
        batch.series[fp] = labels
        n = len(ts.samples)
        batch.fingerprint.extend([fp] * n)
        batch.timestamp_ms.extend(s.timestamp for s in ts.samples)
        batch.value.extend(s.value for s in ts.samples)
        accepted += n
        for ex in ts.exemplars:
            ex_labels = {label.name: label.value for label in ex.labels}
            trace_id = ex_labels.pop("trace_id", "")
            span_id = ex_labels.pop("span_id", "")
            batch.add_exemplar(fp, ex.timestamp, ex.value, trace_id, span_id, ex_labels)
    for meta in request.metadata:
        kind = _TYPES[meta.type] if 0 <= meta.type < len(_TYPES) else "unknown"
        batch.metadata[meta.metric_family_name] = MetricMetadata(meta.metric_family_name, kind, meta.help, meta.unit)
    return batch, rejected, accepted


def encode_write_request(batch: MetricBatch) -> bytes:
    """A MetricBatch as a snappy-compressed remote write 1.0 body (labels sorted, samples in order)."""
    classes = _classes()
    request = classes["WriteRequest"]()
    by_series: dict[int, list[tuple[int, float]]] = {}
    for fp, at, number in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True):
        by_series.setdefault(fp, []).append((at, number))
    for fp, samples in by_series.items():
        series = request.timeseries.add()
        for name, text in sorted(batch.series[fp].items()):
            series.labels.add(name=name, value=text)
        for t, v in sorted(samples, key=lambda s: s[0]):
            series.samples.add(value=v, timestamp=t)
    for meta in batch.metadata.values():
        kind = _TYPES.index(meta.type) if meta.type in _TYPES else 0
        request.metadata.add(type=kind, metric_family_name=meta.metric, help=meta.help, unit=meta.unit)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
