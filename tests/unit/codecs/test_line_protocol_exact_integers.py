"""Integer and unsigned fields a float64 cannot hold reach the samples exactly, by either parser.

The C scanner and the Python parser give the same rows and the same exact values (and kinds) for the
integers beyond 2**53 whose double rounds; the exact values follow their rows wherever the rows move
(fallback lines merged back in line order, a line dropped for an overflowing float, a line that
falls back half-way) and through the mapping to samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from collector.codecs.influx_metrics import columns_to_samples
from collector.codecs.line_protocol_columns import KIND_CODES, LineColumns, LineScanner, c_scanner_available
from collector.model import SampleColumns

INTEGER, UNSIGNED = KIND_CODES["int"], KIND_CODES["uint"]

PATHS = [
    pytest.param(True, id="c", marks=pytest.mark.skipif(not c_scanner_available(), reason="C scanner not built")),
    pytest.param(False, id="python"),
]


def _exact_of(cols: LineColumns) -> dict[int, int]:
    return dict(zip(cols.exact_row.tolist(), cols.exact_value, strict=True))


def _read_back(cols: LineColumns) -> list[int | float]:
    """Each row's value as a reader gives it: the exact integer where there is one, else the double."""
    exact = _exact_of(cols)
    return [exact.get(row, v) for row, v in enumerate(cols.value.tolist())]


# token, kind, value as written; `exact` when the double does not hold it (so a side row carries it)
CASES = [
    ("9223372036854775807i", INTEGER, 2**63 - 1, True),
    ("-9223372036854775808i", INTEGER, -(2**63), False),  # a power of two: the double holds it
    ("-9223372036854775807i", INTEGER, -(2**63) + 1, True),
    ("18446744073709551615u", UNSIGNED, 2**64 - 1, True),
    ("18446744073709551614u", UNSIGNED, 2**64 - 2, True),
    ("9223372036854775808u", UNSIGNED, 2**63, False),
    ("9223372036854775809u", UNSIGNED, 2**63 + 1, True),
    ("9007199254740993i", INTEGER, 2**53 + 1, True),
    ("-9007199254740993i", INTEGER, -(2**53) - 1, True),
    ("9007199254740993u", UNSIGNED, 2**53 + 1, True),
    ("9007199254740992i", INTEGER, 2**53, False),
    ("9007199254740991i", INTEGER, 2**53 - 1, False),
    ("-9007199254740991i", INTEGER, -(2**53) + 1, False),
    ("9007199254740994u", UNSIGNED, 2**53 + 2, False),  # even: 53 significant bits
    ("18014398509481985i", INTEGER, 2**54 + 1, True),
    ("0u", UNSIGNED, 0, False),
    ("-0i", INTEGER, 0, False),
    ("42i", INTEGER, 42, False),
]


@pytest.mark.parametrize("use_c", PATHS)
@pytest.mark.parametrize(("token", "kind", "value", "exact"), CASES, ids=[c[0] for c in CASES])
def test_one_value(use_c: bool, token: str, kind: int, value: int, exact: bool) -> None:
    cols, errors = LineScanner(use_c=use_c).parse(f"m,h=a f={token} 1000".encode(), "ns", 0)
    assert errors == []
    assert cols.kind.tolist() == [kind]
    assert cols.value.tolist() == [float(value)]
    assert _exact_of(cols) == ({0: value} if exact else {})
    assert _read_back(cols) == [value]


def test_the_c_scanner_reads_plain_big_integers_itself() -> None:
    """Not by handing the line to Python: the C path is what carries most writes."""
    if not c_scanner_available():
        pytest.skip("C scanner not built")
    from collector.codecs import _lp_fast  # type: ignore[attr-defined]

    body = b"m a=9223372036854775807i,b=9007199254740993u,c=1.5,d=-9007199254740993i 1\n"
    *_, fallback, _untimed, accepted, exact = _lp_fast.Scanner(100).parse(body, 1, 0)
    assert (fallback, accepted) == ([], 1)
    pairs = np.frombuffer(exact, np.dtype([("row", np.int64), ("bits", np.uint64)]))
    assert pairs["row"].tolist() == [0, 1, 3]
    assert pairs["bits"].tolist() == [2**63 - 1, 2**53 + 1, 2**64 - 2**53 - 1]


# Bodies whose rows move between the scan and the columns: the exact values must move with them.
BODIES = [
    # plain lines around a fallback line (an escaped tag): merged back in line order
    b"m,h=a f=9223372036854775807i 1\nm,h=b\\ c f=9007199254740993i 2\nm,h=a f=1i 3\nm,h=a f=-9007199254740993i 4\n",
    # the largest unsigned values are read by the Python parser (near the range limit), the rest in C
    b"m,h=a f=18446744073709551615u 1\nm,h=a f=9007199254740993u 2\nm,h=a f=18446744073709551613u 3\n",
    # a line dropped for a float that overflows (found after the scan): later rows move up
    b"m,h=a f=9007199254740993i 1\nm,h=a f=9007199254740995i,g=1e309 2\nm,h=a f=9007199254740997i,g=1 3\n",
    # a line that falls back half-way (a repeated field key: the last value wins, as in Python)
    b"m,h=a f=9007199254740993i,f=9007199254740995i 1\nm,h=a f=1i,g=9007199254740997i 2\n",
    # a bad line among them, and a string field
    b'm,h=a f=9007199254740993i,s="x" 1\nm,h=a f= 2\nm,h=a f=9007199254741001i 3\n',
    # many rows, few exact: rows far apart
    b"".join(f"m,h=a f={i}i,g={2**63 - i if i % 7 == 0 else i}i {i}\n".encode() for i in range(1, 60)),
]


@pytest.mark.parametrize("body", BODIES)
def test_c_and_python_agree(body: bytes) -> None:
    if not c_scanner_available():
        pytest.skip("C scanner not built")
    c_cols, c_errors = LineScanner(use_c=True).parse(body, "ns", 0)
    py_cols, py_errors = LineScanner(use_c=False).parse(body, "ns", 0)
    assert [str(e) for e in c_errors] == [str(e) for e in py_errors]
    assert c_cols.value.tolist() == py_cols.value.tolist()
    assert c_cols.kind.tolist() == py_cols.kind.tolist()
    assert c_cols.line.tolist() == py_cols.line.tolist()
    assert _exact_of(c_cols) == _exact_of(py_cols)
    assert c_cols.exact_row.tolist() == sorted(c_cols.exact_row.tolist())
    assert _exact_of(c_cols)  # every body has some
    assert all(abs(v) > 2**53 and float(v) != v for v in c_cols.exact_value)


@pytest.mark.parametrize("use_c", PATHS)
def test_exact_values_reach_the_samples(use_c: bool) -> None:
    body = b"m,h=a f=9223372036854775807i,u=18446744073709551615u 5000000\nm,h=b f=3i,u=9007199254740993u 6000000\n"
    cols, _ = LineScanner(use_c=use_c).parse(body, "ns", 0)
    samples = columns_to_samples(cols, {"db": "d"})
    exact = samples.batch.sample_columns().exact
    assert exact is not None
    sample_cols = samples.batch.sample_columns()
    got = {
        (samples.batch.series[int(sample_cols.fingerprint[row])]["h"], int(sample_cols.timestamp_ms[row]), value, kind)
        for row, value, kind in zip(exact.row.tolist(), exact.value, exact.field_type, strict=True)
    }
    assert got == {("a", 5, 2**63 - 1, "integer"), ("a", 5, 2**64 - 1, "unsigned"), ("b", 6, 2**53 + 1, "unsigned")}


def test_taking_rows_keeps_the_exact_values_of_the_rows_kept() -> None:
    cols, _ = LineScanner().parse(b"m f=9007199254740993i,g=1i,h=9007199254740995i 1\n", "ns", 0)
    samples = columns_to_samples(cols, {})
    full = samples.batch.sample_columns()
    kept = full.take(np.array([False, True, True]))
    assert kept.exact is not None
    assert (kept.exact.row.tolist(), kept.exact.value, kept.exact.field_type) == ([1], [2**53 + 3], ["integer"])
    assert full.take(np.array([False, True, False])).exact is None
    plain = SampleColumns(full.fingerprint, full.timestamp_ms, full.value)
    assert plain.take(np.array([True, False, True])).exact is None
