"""The in-ClickHouse trace flattener gives the rows the Python flattener gives, for every value type."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from collector.codecs.otlp_traces import decode_traces
from collector.codecs.otlp_values import TimeWindow
from collector.store.chdb_engine import ChdbEngine
from collector.store.otlp_sql import length_delimited, select_sql, write_schema
from collector.store.readers import typed_value

_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"obs-store-tests-{os.getpid()}"


def _value_strategy() -> st.SearchStrategy[AnyValue]:
    leaf = st.one_of(
        st.text().map(lambda s: AnyValue(string_value=s)),
        st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
        st.floats(allow_nan=False).map(lambda d: AnyValue(double_value=d)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
    )
    return st.one_of(
        leaf,
        st.lists(leaf, min_size=1, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.dictionaries(st.text(max_size=5), leaf, min_size=1, max_size=3).map(
            lambda d: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in d.items()]))
        ),
    )


def _request(values: list[AnyValue], seed: int = 1) -> ExportTraceServiceRequest:
    rng = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=AnyValue(string_value="svc"))
    rs.resource.attributes.add(key="pid", value=AnyValue(int_value=42))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "scope", "1.0"
    span = ss.spans.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), parent_span_id=rng.randbytes(8),
                        name="op", kind=3, start_time_unix_nano=1_700_000_000_123_456_789,
                        end_time_unix_nano=1_700_000_000_223_456_789, trace_state="k=v")
    for i, v in enumerate(values):
        span.attributes.add(key=f"a{i}", value=v)
    span.status.code, span.status.message = 2, "bad"
    ev = span.events.add(time_unix_nano=1_700_000_000_200_000_000, name="ev")
    ev.attributes.add(key="x", value=AnyValue(double_value=0.5))
    link = span.links.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), trace_state="a=b")
    link.attributes.add(key="l", value=AnyValue(bool_value=True))
    ss.spans.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), name="bare", start_time_unix_nano=5,
                 end_time_unix_nano=9)
    return req


def _typed(row: dict[str, Any], values: str, types: str) -> dict[str, Any]:
    tags = dict(row[types])
    return {k: typed_value(v, tags.get(k)) for k, v in row[values]}


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """Compare values by meaning: attribute texts differ only in how a double is spelled."""
    out = dict(row)
    for values, types in (("ResourceAttributes", "ResourceAttributeTypes"), ("SpanAttributes", "SpanAttributeTypes")):
        out[values] = _typed(row, values, types)
        out[types] = dict(row[types])
    for prefix in ("Events", "Links"):
        out[f"{prefix}.Attributes"] = [
            {k: typed_value(v, dict(t).get(k)) for k, v in a}
            for a, t in zip(row[f"{prefix}.Attributes"], row[f"{prefix}.AttributeTypes"], strict=True)
        ]
        out[f"{prefix}.AttributeTypes"] = [dict(t) for t in row[f"{prefix}.AttributeTypes"]]
    return out


@pytest.fixture(scope="module")
def engine() -> ChdbEngine:
    return ChdbEngine.shared(_DIR)


def _via_sql(engine: ChdbEngine, reqs: list[ExportTraceServiceRequest], tmp: Path) -> list[dict[str, Any]]:
    schema = write_schema(tmp / "schema")
    data = tmp / "batch.bin"
    data.write_bytes(length_delimited([r.SerializeToString() for r in reqs]))
    return engine.query(select_sql(schema), {"path": str(data)}).to_pylist()


def _via_python(reqs: list[ExportTraceServiceRequest]) -> list[dict[str, Any]]:
    rows = []
    for r in reqs:
        rows += decode_traces(r, TimeWindow())[0].to_arrow().to_pylist()
    return rows


def test_same_rows_as_python_flattener(engine: ChdbEngine, tmp_path: Path) -> None:
    values = [
        AnyValue(string_value="s"), AnyValue(string_value=""), AnyValue(int_value=0), AnyValue(int_value=-5),
        AnyValue(double_value=2.5), AnyValue(double_value=float("inf")), AnyValue(bool_value=False),
        AnyValue(bytes_value=b"\x00\xff"), AnyValue(),
        AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=2)])),
        AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(bool_value=True))])),
    ]
    reqs = [_request(values, 1), _request(values[:3], 2)]
    sql_rows, py_rows = _via_sql(engine, reqs, tmp_path), _via_python(reqs)
    assert len(sql_rows) == len(py_rows) == 4
    for got, want in zip(sql_rows, py_rows, strict=True):
        assert _normalise(got) == _normalise(want)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(_value_strategy(), max_size=6))
def test_any_attribute_value_reads_back_the_same(values: list[AnyValue]) -> None:
    import tempfile

    engine = ChdbEngine.shared(_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        [got, _], [want, _] = _via_sql(engine, [_request(values)], Path(tmp)), _via_python([_request(values)])
    assert _normalise(got)["SpanAttributes"] == _normalise(want)["SpanAttributes"]
    assert dict(got["SpanAttributeTypes"]) == dict(want["SpanAttributeTypes"])
