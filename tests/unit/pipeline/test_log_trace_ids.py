"""Trace ids found in log bodies: logfmt-ish `trace_id=`, JSON `trace_id` fields, and what is not an id."""

from __future__ import annotations

import pytest

from collector.model import LogBatch
from collector.pipeline.log_trace_ids import fill_trace_ids, trace_ids_in_body

T = "4bf92f3577b34da6a3ce929d0e0e4736"
S = "00f067aa0ba902b7"

CASES = [
    ("no ids", "GET /orders 200 in 3 ms", ("", "")),
    ("logfmt", f"level=info msg=placed trace_id={T} span_id={S}", (T, S)),
    ("logfmt, trace id only", f"msg=placed trace_id={T}", (T, "")),
    ("quoted values", f'msg="placed" trace_id="{T}" span_id="{S}"', (T, S)),
    ("upper-case hex comes back lower-case", f"trace_id={T.upper()} span_id={S.upper()}", (T, S)),
    (
        "the OTel logging format",
        f"2024-01-01 INFO [app] [file.py:3] [trace_id={T} span_id={S} resource.service.name=shop "
        "trace_sampled=True] - placed",
        (T, S),
    ),
    ("outside a span the OTel format prints 0", "[trace_id=0 span_id=0 resource.service.name=shop] - idle", ("", "")),
    ("all-zero id is no trace", f"trace_id={'0' * 32} span_id={S}", ("", "")),
    ("too short", f"trace_id={T[:-1]}", ("", "")),
    ("too long", f"trace_id={T}0", ("", "")),
    ("not hex", f"trace_id={T[:-1]}g", ("", "")),
    ("a longer key that ends in trace_id", f"parent_trace_id={T}", ("", "")),
    ("a dotted key", f"otel.trace_id={T}", ("", "")),
    ("span id without trace id", f"span_id={S}", ("", "")),
    ("bad span id is dropped, trace id kept", f"trace_id={T} span_id={S[:-2]}", (T, "")),
    ("JSON object", f'{{"msg": "placed", "trace_id": "{T}", "span_id": "{S}"}}', (T, S)),
    ("JSON with surrounding space", f'  {{"trace_id": "{T}"}}\n', (T, "")),
    ("JSON with a bad span id", f'{{"trace_id": "{T}", "span_id": 7}}', (T, "")),
    ("JSON with a non-string trace id", '{"trace_id": 123}', ("", "")),
    ("JSON whose text holds a logfmt id", f'{{"msg": "retry trace_id={T}"}}', (T, "")),
    ("broken JSON falls back to logfmt", f'{{"trace_id": "{T}", trace_id={T}', (T, "")),
    ("JSON array is not an object", f'["trace_id", "{T}"]', ("", "")),
]


@pytest.mark.parametrize("body, want", [(b, w) for _, b, w in CASES], ids=[c[0] for c in CASES])
def test_trace_ids_in_body(body: str, want: tuple[str, str]) -> None:
    assert trace_ids_in_body(body) == want


def test_only_records_without_otlp_ids_take_the_bodys() -> None:
    batch = LogBatch()
    other = "1" * 32
    for trace_id, span_id, body in (
        ("", "", f"trace_id={T} span_id={S}"),
        (other, "2" * 16, f"trace_id={T} span_id={S}"),  # the OTLP ids win
        ("", "", "no ids here"),
    ):
        batch.trace_id.append(trace_id)
        batch.span_id.append(span_id)
        batch.body.append(body)
    assert fill_trace_ids(batch) == 1
    assert list(zip(batch.trace_id, batch.span_id, strict=True)) == [(T, S), (other, "2" * 16), ("", "")]
