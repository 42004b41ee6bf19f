"""One type per line protocol field: the cases as the real InfluxDB 1.6 answered them (see
tests/integration/test_influx_field_types.py, which replays such writes against influxd)."""

from __future__ import annotations

import pytest

from collector.codecs.influx_metrics import SeriesMapper, columns_to_samples
from collector.codecs.line_protocol_columns import LineScanner
from collector.pipeline.field_types import FieldTypes, write_scope

NOW = 1_700_000_000_000_000_000
DB = {"db": "d"}


def _conflict(fld: str, measurement: str, got: str, have: str) -> str:
    return (
        f'field type conflict: input field "{fld}" on measurement "{measurement}" is type {got}, '
        f"already exists as type {have}"
    )


# Writes in order to one FieldTypes: (body, write labels, dropped lines, message, new types).
Write = tuple[str, dict[str, str], list[int], str, list[tuple[str, str]]]
CASES: list[tuple[str, list[Write]]] = [
    (
        "a later write of another type",
        [
            ("m f=1 1", DB, [], "", [("m_f", "float")]),
            ("m,h=b f=2i 2", DB, [1], _conflict("f", "m", "integer", "float"), []),
            ("m f=3 3", DB, [], "", []),
        ],
    ),
    (
        "the first point of a batch sets the type; the whole point goes",
        [
            (
                "n a=1i 1\nn a=2 2\nn a=3i 3\nn a=true 4",
                DB,
                [2, 4],
                _conflict("a", "n", "float", "integer"),
                [("n_a", "integer")],
            )
        ],
    ),
    (
        "a dropped point takes its other fields along",
        [
            (
                "q a=1i,b=1 1\nq a=2,b=2 2\nq b=3i 3",
                DB,
                [2, 3],
                _conflict("a", "q", "float", "integer"),
                [("q_a", "integer"), ("q_b", "float")],
            )
        ],
    ),
    (
        "string fields count",
        [
            ("s f=1 1", DB, [], "", [("s_f", "float")]),
            ('s f="x" 2\ns f=2 3', DB, [1], _conflict("f", "s", "string", "float"), []),
            ('t f="x" 2\nt f=2 3', DB, [2], _conflict("f", "t", "float", "string"), [("t_f", "string")]),
        ],
    ),
    (
        "unsigned and boolean are types of their own",
        [
            (
                "u f=1u 1\nu f=1i 2\nu g=t 3\nu g=1 4",
                DB,
                [2, 4],
                _conflict("f", "u", "integer", "unsigned"),
                [
                    ("u_f", "unsigned"),
                    ("u_g", "boolean"),
                ],
            ),
        ],
    ),
    (
        "each database keeps its own types",
        [
            ("m f=1 1", DB, [], "", [("m_f", "float")]),
            ("m f=1i 1", {"db": "d2"}, [], "", [("m_f", "integer")]),
            ("m f=1i 1", {"bucket": "d"}, [], "", [("m_f", "integer")]),
        ],
    ),
    (
        "lines the Python parser reads (escapes, quotes) are judged alike",
        [
            (
                'e\\ x,h=a f=1i,s="v" 1\ne\\ x f=2 2\ne\\ x s=1 3',
                DB,
                [2, 3],
                _conflict("f", "e x", "float", "integer"),
                [
                    ("e_x_f", "integer"),
                    ("e_x_s", "string"),
                ],
            ),
        ],
    ),
]


@pytest.mark.parametrize("use_c", [True, False])
@pytest.mark.parametrize(("name", "writes"), CASES, ids=[c[0] for c in CASES])
def test_writes_as_influxdb_answers_them(name: str, writes: list[Write], use_c: bool) -> None:
    scanner, mapper, types = LineScanner(use_c=use_c), SeriesMapper(), FieldTypes()
    for body, labels, dropped, message, new_types in writes:
        columns, errors = scanner.parse(body.encode(), "ns", NOW)
        assert errors == []
        samples = columns_to_samples(columns, labels, mapper)
        outcome = types.check(samples, write_scope(labels))
        assert (outcome.dropped_lines, outcome.message) == (dropped, message)
        assert sorted(outcome.new_types) == sorted(new_types)
        # The kept samples are exactly those of the kept lines.
        kept = [n for n in columns.line.tolist() if n not in dropped]
        assert outcome.samples.line.tolist() == kept
        assert len(outcome.samples.batch) == len(kept)
        assert outcome.samples.skipped_strings == sum(1 for n, _ in columns.strings if n not in dropped)


def test_known_types_from_the_store_are_enforced() -> None:
    types = FieldTypes([("db=d", "m_f", "integer"), ("db=d", "m_g", "not a type")])
    assert types.type_of("db=d", "m_f") == "integer" and types.type_of("db=d", "m_g") is None
    columns, _ = LineScanner().parse(b"m f=1 1\nm f=2i 2\nm g=1 3", "ns", NOW)
    outcome = types.check(columns_to_samples(columns, DB), "db=d")
    assert outcome.dropped_lines == [1]
    assert outcome.message == _conflict("f", "m", "float", "integer")
    assert outcome.new_types == [("m_g", "float")]


def test_repeated_writes_take_the_array_path_and_stay_right() -> None:
    """The same series again (one mapper table, its name list cached): nothing new, then a conflict."""
    scanner, mapper, types = LineScanner(), SeriesMapper(), FieldTypes()
    body = b"cpu,host=a idle=1,procs=2i,up=t 1\ncpu,host=b idle=1.5,procs=3i,up=f 2"
    first = types.check(columns_to_samples(scanner.parse(body, "ns", NOW)[0], DB, mapper), "db=d")
    assert sorted(first.new_types) == [("cpu_idle", "float"), ("cpu_procs", "integer"), ("cpu_up", "boolean")]
    again = types.check(columns_to_samples(scanner.parse(body, "ns", NOW)[0], DB, mapper), "db=d")
    assert (again.dropped_lines, again.new_types) == ([], [])
    bad = types.check(columns_to_samples(scanner.parse(b"cpu,host=a procs=2 3", "ns", NOW)[0], DB, mapper), "db=d")
    assert bad.dropped_lines == [1] and bad.message == _conflict("procs", "cpu", "float", "integer")
    grown = types.check(
        columns_to_samples(scanner.parse(b"cpu,host=a idle=1,load=1i 4", "ns", NOW)[0], DB, mapper), "db=d"
    )
    assert (grown.dropped_lines, grown.new_types) == ([], [("cpu_load", "integer")])
    load = types.check(columns_to_samples(scanner.parse(b"cpu,host=c load=0.5 5", "ns", NOW)[0], DB, mapper), "db=d")
    assert load.dropped_lines == [1]


@pytest.mark.parametrize(
    ("labels", "scope"),
    [({"db": "d"}, "db=d"), ({"rp": "r", "db": "d"}, "db=d,rp=r"), ({"bucket": "b"}, "bucket=b")],
)
def test_write_scope(labels: dict[str, str], scope: str) -> None:
    assert write_scope(labels) == scope


def test_forgotten_types_are_set_again() -> None:
    """A write whose types could not be stored is undone: its retry (or another write) sets them anew."""
    scanner, mapper, types = LineScanner(), SeriesMapper(), FieldTypes()
    first = types.check(columns_to_samples(scanner.parse(b"m f=1i 1", "ns", NOW)[0], DB, mapper), "db=d")
    assert first.new_types == [("m_f", "integer")]
    types.forget("db=d", first.new_types)
    assert types.type_of("db=d", "m_f") is None
    other = types.check(columns_to_samples(scanner.parse(b"m f=1 2", "ns", NOW)[0], DB, mapper), "db=d")
    assert (other.dropped_lines, other.new_types) == ([], [("m_f", "float")])
