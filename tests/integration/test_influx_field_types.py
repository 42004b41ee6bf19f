"""Field types end to end: the same v1 writes to the collector and to a real InfluxDB 1.6 get the same
answers (status and error text, field type conflicts included) and keep the same points with the same
types; the types survive a restart; influxdb-client (v2 API) reads its values back in their type."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from tests.conftest import TIMELESS, CollectorProcess, make_collector
from tests.peers import influxdb

T0 = 1_600_000_000  # seconds: every write falls in one InfluxDB shard (7 days)

# v1 bodies (precision s), written in order to both servers; each line gets a time of its own.
WRITES = [
    "m,h=a f=1 {t}\n",
    "m,h=b f=2i {t}\n",  # integer after float: refused
    "m,h=b f=2i {t}\nm,h=b g=3i {t}\nm,h=c f=true,g=1i {t}\n",  # the other line is kept
    'm f="s" {t}\n',  # a string after float: refused too
    "n a=1i {t}\nn a=2 {t}\nn a=3i {t}\nn a=true {t}\n",  # the first of the batch sets the type
    "n2 a=1i {t}\nn2 a=2 {t}\nn2 bad= {t}\n",  # a conflict is answered ahead of a bad line
    "q a=1i,b=1 {t}\nq a=2,b=2 {t}\nq b=3i {t}\n",  # a dropped point takes its other fields along
    "u,h=x up=t,n=5i,x=1.25 {t}\nu,h=x up=false,n=-7i,x=-0.5 {t}\n",
    "u,h=x up=1 {t}\n",
]
# (measurement, field) pairs whose points are compared; string fields are not samples here.
FIELDS = [("m", "f"), ("m", "g"), ("n", "a"), ("n2", "a"), ("q", "a"), ("q", "b"), ("u", "up"), ("u", "n"), ("u", "x")]
INFLUX_TYPES = {"float": float, "integer": int, "boolean": bool}


def _write(url: str, db: str, body: str) -> tuple[int, Any]:
    r = httpx.post(f"{url}/write", params={"db": db, "precision": "s"}, content=body, timeout=10)
    return r.status_code, (r.json() if r.content else None)


def _influx_points(url: str, db: str) -> dict[tuple[str, str], tuple[str, set[tuple[Any, ...]]]]:
    """(measurement, field) -> (type, {(tags, time s, value)}) as InfluxDB holds them."""
    out = {}
    keys = httpx.get(f"{url}/query", params={"db": db, "q": "SHOW FIELD KEYS"}, timeout=10).json()
    types = {(s["name"], k): t for s in keys["results"][0]["series"] for k, t in s["values"]}
    for measurement, fld in FIELDS:
        q = f'SELECT "{fld}", "h" FROM "{measurement}"'  # rows where the field has a value
        answer = httpx.get(f"{url}/query", params={"db": db, "q": q, "epoch": "s"}, timeout=10).json()
        result = answer["results"][0]
        points: set[tuple[Any, ...]] = set()
        for series in result.get("series", []):
            columns = series["columns"]
            for row in series["values"]:
                record = dict(zip(columns, row, strict=True))
                tags = tuple(sorted((k, v) for k, v in record.items() if k == "h" and v is not None))
                points.add((tags, record["time"], INFLUX_TYPES[types[(measurement, fld)]](record[fld])))
        out[(measurement, fld)] = (types.get((measurement, fld), ""), points)
    return out


def _collector_points(url: str, db: str) -> dict[tuple[str, str], tuple[str, set[tuple[Any, ...]]]]:
    out = {}
    for measurement, fld in FIELDS:
        params = {"metric": f"{measurement}_{fld}", "label": f"db:{db}"}
        found = httpx.get(f"{url}/api/obs/metrics/series", params=params, timeout=10).json()["series"]
        points: set[tuple[Any, ...]] = set()
        kinds = {s["type"] for s in found}
        for s in found:
            tags = tuple(sorted((k, v) for k, v in s["labels"].items() if k == "h"))
            for ts, value in s["samples"]:
                points.add((tags, ts // 1000, float(value) if s["type"] == "float" else value))
        assert len(kinds) <= 1
        out[(measurement, fld)] = (kinds.pop() if kinds else "", points)
    return out


@pytest.fixture
def collector_on_disk(tmp_path: Path) -> Any:
    c = make_collector(tmp_path, **TIMELESS)
    c.start()
    yield c
    c.stop()


def test_same_answers_and_points_as_influxdb(tmp_path: Path, collector_on_disk: CollectorProcess) -> None:
    c = collector_on_disk
    db = f"db_{uuid.uuid4().hex[:8]}"
    (tmp_path / "influx").mkdir()
    with influxdb(tmp_path / "influx") as (influx_url, _):
        httpx.post(f"{influx_url}/query", params={"q": f"CREATE DATABASE {db}"}, timeout=10).raise_for_status()
        for i, body in enumerate(WRITES):
            text = "".join(line.format(t=T0 + 10 * i + j) for j, line in enumerate(body.splitlines(keepends=True)))
            assert _write(c.url, db, text) == _write(influx_url, db, text), text
        expected = _influx_points(influx_url, db)
    assert expected[("n", "a")][0] == "integer" and len(expected[("n", "a")][1]) == 2  # the case is there
    assert _collector_points(c.url, db) == expected
    metrics = httpx.get(f"{c.url}/metrics", timeout=10).text
    # the lines dropped above (InfluxDB's dropped=): 1 + 2 + 1 + 2 + 1 + 2 + 1
    assert 'obs_refused_items_total{protocol="influx_v1",reason="field_type_conflict",signal="metrics"} 10.0' in metrics

    # The types are recorded in the store: a restarted collector refuses the same conflict.
    c.stop()
    c.start()
    status, answer = _write(c.url, db, f"u,h=y n=1.5 {T0 + 99}\n")
    assert status == 400
    assert answer == {
        "error": 'partial write: field type conflict: input field "n" on measurement "u" is type float, '
        "already exists as type integer dropped=1"
    }


def test_influxdb_client_v2_reads_back_types_and_gets_422_on_conflict(collector: CollectorProcess) -> None:
    host = f"h-{uuid.uuid4().hex[:8]}"
    now_ns = time.time_ns() // 1_000_000 * 1_000_000
    with InfluxDBClient(url=collector.url, token="t", org="o") as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(
            "typed",
            record=Point("job")
            .tag("host", host)
            .field("retries", 3)
            .field("ok", False)
            .field("ratio", 0.25)
            .field("big", 2**53)
            .time(now_ns),
        )
        with pytest.raises(ApiException) as refused:
            write.write("typed", record=Point("job").tag("host", host).field("retries", 3.5).time(now_ns + 10**6))
    assert refused.value.status == 422
    assert json.loads(refused.value.body) == {
        "code": "unprocessable entity",
        "message": "failure writing points to database: partial write: field type conflict: "
        'input field "retries" on measurement "job" is type float, already exists as type integer dropped=1',
    }

    def one(metric: str) -> tuple[str, list[Any]]:
        params = [("metric", metric), ("label", f"host:{host}")]
        [s] = httpx.get(f"{collector.url}/api/obs/metrics/series", params=params, timeout=10).json()["series"]
        return s["type"], s["samples"]

    ms = now_ns // 1_000_000
    assert one("job_retries") == ("integer", [[ms, 3]])
    assert one("job_ok") == ("boolean", [[ms, False]])
    assert one("job_ratio") == ("float", [[ms, "0.25"]])
    assert one("job_big") == ("integer", [[ms, 2**53]])
