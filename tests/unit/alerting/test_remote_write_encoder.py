"""Our hand-written remote write encoder, decoded by the collector's own remote write decoder."""

from __future__ import annotations

import math
import struct

from hypothesis import given
from hypothesis import strategies as st

from alerting.remote_write import STALE_NAN, encode_body
from collector.codecs.remote_write import decode_write_request, decompress_snappy


def _decode(body: bytes) -> list[tuple[dict[str, str], int, float]]:
    batch, rejected, _ = decode_write_request(decompress_snappy(body, 1 << 26))
    assert rejected.count == 0, rejected.summary()
    return [
        (dict(batch.series[fp]), ts, v)
        for fp, ts, v in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True)
    ]


def test_round_trip_through_collector_decoder() -> None:
    samples = [
        ({"__name__": "job:up:sum", "job": "api"}, 1700000000.123, 3.0),
        ({"__name__": "ALERTS", "alertname": "X", "alertstate": "firing", "svc": "päy"}, 1700000000.5, 1.0),
        ({"__name__": "job:up:sum", "job": "api"}, 1700000001.123, -2.5e300),
        ({"__name__": "old", "x": "y"}, -1.5, float("inf")),  # negative timestamps are ten-byte varints
    ]
    got = _decode(encode_body(samples))
    assert got == [
        ({"__name__": "job:up:sum", "job": "api"}, 1700000000123, 3.0),
        ({"__name__": "job:up:sum", "job": "api"}, 1700000001123, -2.5e300),
        ({"__name__": "ALERTS", "alertname": "X", "alertstate": "firing", "svc": "päy"}, 1700000000500, 1.0),
        ({"__name__": "old", "x": "y"}, -1500, float("inf")),
    ]


def test_stale_marker_keeps_its_bits() -> None:
    ((_, _, value),) = _decode(encode_body([({"__name__": "m"}, 1.0, STALE_NAN)]))
    assert math.isnan(value)
    assert struct.pack("<d", value) == struct.pack("<d", STALE_NAN)


_label = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)


@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), _label, max_size=4),
            st.integers(min_value=-(2**40), max_value=2**42),
            st.floats(allow_nan=False),
        ),
        max_size=20,
    )
)
def test_property_round_trip(points: list[tuple[dict[str, str], int, float]]) -> None:
    samples = [({**labels, "__name__": "m"}, ts / 1000, v) for labels, ts, v in points]
    got = _decode(encode_body(samples))
    want: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for labels, at, v in samples:
        want.setdefault(tuple(sorted(labels.items())), []).append((round(at * 1000), v))
    have: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for labels, ts, v in got:
        have.setdefault(tuple(sorted(labels.items())), []).append((ts, v))
    assert have == want
