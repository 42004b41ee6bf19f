"""Checking one eval statement's result against its expectations (DSL.md section 7): values, labels,
order, annotations, and the reference harness' extra @-pinning and range-mode runs."""

from __future__ import annotations

import math
import re
import sys

import numpy as np

from collector.query.promql.engine import Engine
from collector.query.promql.errors import PromQLError
from collector.query.promql.testfile import Eval
from collector.query.promql.values import QueryResult, Sample, is_stale, label_key

_MIN_NORMAL = 2.2250738585072014e-308
_EPS = 1e-6


def floats_equal(a: float, b: float) -> bool:
    """DSL.md 7.4: stale markers only equal each other, NaN equals NaN, else a 1e-6 relative tolerance."""
    sa, sb = bool(is_stale(np.array([a]))[0]), bool(is_stale(np.array([b]))[0])
    if sa or sb:
        return sa and sb
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or abs(a) + abs(b) < _MIN_NORMAL:
        return diff < _EPS * _MIN_NORMAL
    return diff / min(abs(a) + abs(b), sys.float_info.max) < _EPS


class Mismatch(Exception):
    pass


# Expressions whose value depends on the evaluation time itself: no @-pinning check (DSL.md 7.5).
_TIME_DEPENDENT = (
    "time", "timestamp", "predict_linear", "minute", "hour", "day_of_week", "day_of_month", "day_of_year",
    "days_in_month", "month", "year", "start", "end", "range", "step",
)  # fmt: skip
_TIME_DEPENDENT_RE = re.compile(r"\b(?:" + "|".join(_TIME_DEPENDENT) + r")\s*\(")
_RANGE_EXCLUDED_RE = re.compile(r"\b(?:start|end|range|step)\s*\(\s*\)")


def check_invariance(ev: Eval, engine: Engine) -> None:
    """DSL.md 7.5: the same answer with every selector pinned by `@` at other evaluation times, and as a
    range query from t-1m to t+1m (the point at t)."""
    t = ev.at_ms
    if ev.range_vector is None and ev.expect_string is None and not _TIME_DEPENDENT_RE.search(ev.expr):
        for at in [-1000, 0, 1000] if t == 0 else [-10 * t, 0, t // 5, t, 10 * t]:
            try:
                res = engine.instant(ev.expr, at, pin_at_ms=t)
            except PromQLError as exc:
                raise Mismatch(f"@-pinned at {at}: unexpected error {exc}") from exc
            try:
                check_result(ev, res)
            except Mismatch as exc:
                raise Mismatch(f"@-pinned at {at}: {exc}") from exc
    if ev.ordered or ev.range_vector is not None or ev.expect_string is not None:
        return
    if _RANGE_EXCLUDED_RE.search(ev.expr):
        return
    try:
        res = engine.range(ev.expr, t - 60_000, t + 60_000, 60_000)
    except PromQLError as exc:
        raise Mismatch(f"range mode: unexpected error {exc}") from exc
    keys = [label_key(s.labels) for s in res.matrix]
    if keys != sorted(keys):
        raise Mismatch("range mode: matrix not sorted by labels")
    if ev.expect_scalar is not None:
        points = [float(s.values[k]) for s in res.matrix[:1] for k in range(len(s.timestamps)) if s.timestamps[k] == t]
        if len(points) != 1 or not floats_equal(points[0], ev.expect_scalar):
            raise Mismatch(f"range mode: expected scalar {ev.expect_scalar} at t, got {points}")
        return
    vector = [
        Sample(s.labels, t, float(s.values[k]))
        for s in res.matrix
        for k in range(len(s.timestamps))
        if s.timestamps[k] == t
    ]
    try:
        _check_vector(ev, QueryResult("vector", vector=vector))
    except Mismatch as exc:
        raise Mismatch(f"range mode: {exc}") from exc


def _annotation_matches(kind: str, text: str, got: str) -> bool:
    if kind == "any":
        return True
    if kind == "msg":
        return got == text
    return re.search(text, got) is not None


def check_annotations(ev: Eval, res: QueryResult) -> None:
    for expected, got, what in ((ev.warn, res.warnings, "warning"), (ev.info, res.infos, "info")):
        if not expected:
            continue
        if not got:
            raise Mismatch(f"expected {what} annotations, got none")
        for kind, text in expected:
            if not any(_annotation_matches(kind, text, g) for g in got):
                raise Mismatch(f"no {what} matches {text!r}: {got}")
        for g in got:
            if not any(_annotation_matches(kind, text, g) for kind, text in expected):
                raise Mismatch(f"unexpected {what} {g!r}")
    if ev.no_warn and res.warnings:
        raise Mismatch(f"unexpected warnings {res.warnings}")
    if ev.no_info and res.infos:
        raise Mismatch(f"unexpected infos {res.infos}")


def check_result(ev: Eval, res: QueryResult) -> None:
    if ev.expect_string is not None:
        if res.result_type != "string" or res.string is None or res.string[1] != ev.expect_string:
            raise Mismatch(f"expected string {ev.expect_string!r}, got {res.result_type} {res.string}")
        return
    if ev.expect_scalar is not None:
        if res.result_type != "scalar" or res.scalar is None:
            raise Mismatch(f"expected scalar {ev.expect_scalar}, got {res.result_type}")
        if not floats_equal(res.scalar[1], ev.expect_scalar):
            raise Mismatch(f"expected scalar {ev.expect_scalar}, got {res.scalar[1]}")
        return
    if ev.instant and ev.range_vector is None:
        _check_vector(ev, res)
    else:
        _check_matrix(ev, res)


def _check_vector(ev: Eval, res: QueryResult) -> None:
    if res.result_type == "scalar":
        raise Mismatch(f"expected vector, got scalar {res.scalar}")
    if res.result_type != "vector":
        raise Mismatch(f"expected vector, got {res.result_type}")
    expected = {label_key(s.labels): (s.values[0], s.line) for s in ev.series}
    got = [(label_key(s.labels), s.value) for s in res.vector]
    if len({k for k, _ in got}) != len(got):
        raise Mismatch("result has duplicate label sets")
    if set(expected) != {k for k, _ in got}:
        missing = set(expected) - {k for k, _ in got}
        extra = {k for k, _ in got} - set(expected)
        raise Mismatch(f"series differ: missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}")
    for k, v in got:
        want = expected[k][0]
        if not isinstance(want, float) or not floats_equal(v, want):
            raise Mismatch(f"{dict(k)}: expected {want}, got {v}")
    if ev.ordered:
        order = [label_key(s.labels) for s in ev.series]
        if [k for k, _ in got] != order:
            raise Mismatch("order differs")


def _check_matrix(ev: Eval, res: QueryResult) -> None:
    if res.result_type != "matrix":
        raise Mismatch(f"expected matrix, got {res.result_type}")
    if ev.range_vector is not None:
        start, _, step = ev.range_vector
    else:
        start, step = ev.start_ms, ev.step_ms
    keys = [label_key(s.labels) for s in res.matrix]
    if keys != sorted(keys):
        raise Mismatch("matrix not sorted by labels")
    expected = {label_key(s.labels): s.values for s in ev.series}
    if set(expected) != set(keys):
        missing = set(expected) - set(keys)
        extra = set(keys) - set(expected)
        raise Mismatch(f"series differ: missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}")
    for s in res.matrix:
        want = [(start + i * step, v) for i, v in enumerate(expected[label_key(s.labels)]) if isinstance(v, float)]
        if len(want) != len(s.timestamps):
            raise Mismatch(f"{s.labels}: expected {len(want)} points, got {len(s.timestamps)}")
        for (wt, wv), t, v in zip(want, s.timestamps, s.values, strict=True):
            if wt != int(t) or not floats_equal(float(v), wv):
                raise Mismatch(f"{s.labels}: expected {wv}@{wt}, got {v}@{int(t)}")
