"""ClickHouse's Native format decoded to numpy: the same columns as the Arrow path, for any shape of result."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.store.chdb_engine import ChdbEngine
from collector.store.native_format import NativeFormatError, decode_columns

# The same chDB path as the other store suites (one per process).
_CHDB_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"obs-store-tests-{os.getpid()}"


@pytest.fixture(scope="module")
def engine() -> ChdbEngine:
    return ChdbEngine.shared(_CHDB_DIR)


def _arrow_columns(engine: ChdbEngine, sql: str) -> dict[str, np.ndarray]:
    table = engine.query(sql)
    return {n: table.column(n).combine_chunks().to_numpy(zero_copy_only=False) for n in table.column_names}


@settings(max_examples=25, deadline=None)
@given(rows=st.sampled_from([0, 1, 7, 65_409, 65_410, 200_000]), seed=st.integers(0, 2**31))
def test_native_columns_equal_arrow_columns(engine: ChdbEngine, rows: int, seed: int) -> None:
    # Several blocks (65,409 rows per block by default), every fixed-width type the store reads.
    sql = (
        f"SELECT toUInt64(cityHash64(number, {seed})) AS F, toInt64(number * 15000 - {seed}) AS T, "
        f"if(number % 11 = 3, nan, sipHash64(number, {seed}) / 1e9 - 9e9) AS V, toUInt8(number % 250) AS B, "
        f"toInt32(-number) AS I, toFloat32(number / 3) AS S FROM numbers({rows})"
    )
    native = engine.query_columns(sql)
    if rows == 0:
        assert all(len(column) == 0 for column in native.values())
        return
    arrow = _arrow_columns(engine, sql)
    assert list(native) == list(arrow)
    for name, column in arrow.items():
        assert native[name].dtype == column.dtype
        assert native[name].tobytes() == column.tobytes()  # bit for bit (NaNs included)
        assert native[name].flags.writeable and native[name].flags.owndata


def test_stale_marker_bits_survive(engine: ChdbEngine) -> None:
    got = engine.query_columns("SELECT reinterpretAsFloat64(toUInt64(9218868437227405314)) AS V")["V"]
    assert got.view(np.uint64).tolist() == [0x7FF0000000000002]


def test_non_numeric_columns_are_refused(engine: ChdbEngine) -> None:
    with pytest.raises(NativeFormatError, match="String"):
        engine.query_columns("SELECT 'text' AS S")


@pytest.mark.parametrize(
    "data",
    [
        b"\x01",  # a column count, then nothing
        b"\x01\x02\x01V\x07Float64" + b"\x00" * 8,  # two rows announced, one sent
        b"\x01\x01\x0bFingerpri",  # a name cut short
        b"\x01\x01\x01V\x06Object\x00",  # a type it does not decode
    ],
)
def test_malformed_input_raises(data: bytes) -> None:
    with pytest.raises(NativeFormatError):
        decode_columns(data)
