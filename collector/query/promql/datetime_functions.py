"""Date functions (UTC): day_of_month, day_of_week, day_of_year, days_in_month, hour, minute, month, year."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from collector.query.promql.values import F64


def _parts(seconds: F64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(datetime64[s] values, a NaN/Inf mask, the finite seconds) for timestamps in seconds."""
    bad = ~np.isfinite(seconds)
    secs = np.where(bad, 0, seconds).astype(np.int64)  # Go's time.Unix truncates toward zero
    return secs.astype("datetime64[s]"), bad, secs


def _apply(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[F64], F64]:
    def run(seconds: F64) -> F64:
        dt, bad, _ = _parts(seconds)
        out = fn(dt).astype(np.float64)
        return np.where(bad, np.nan, out)

    return run


def _year(dt: np.ndarray) -> np.ndarray:
    return dt.astype("datetime64[Y]").astype(np.int64) + 1970


def _month(dt: np.ndarray) -> np.ndarray:
    return dt.astype("datetime64[M]").astype(np.int64) % 12 + 1


def _day_of_month(dt: np.ndarray) -> np.ndarray:
    return (dt.astype("datetime64[D]") - dt.astype("datetime64[M]")).astype(np.int64) + 1


def _day_of_year(dt: np.ndarray) -> np.ndarray:
    return (dt.astype("datetime64[D]") - dt.astype("datetime64[Y]")).astype(np.int64) + 1


def _day_of_week(dt: np.ndarray) -> np.ndarray:
    # 1970-01-01 was a Thursday (4); Sunday is 0.
    return (dt.astype("datetime64[D]").astype(np.int64) + 4) % 7


def _days_in_month(dt: np.ndarray) -> np.ndarray:
    m = dt.astype("datetime64[M]")
    return ((m + 1).astype("datetime64[D]") - m.astype("datetime64[D]")).astype(np.int64)


def _hour(dt: np.ndarray) -> np.ndarray:
    return (dt.astype("datetime64[h]") - dt.astype("datetime64[D]")).astype(np.int64)


def _minute(dt: np.ndarray) -> np.ndarray:
    return (dt.astype("datetime64[m]") - dt.astype("datetime64[h]")).astype(np.int64)


DATE_FUNCTIONS: dict[str, Callable[[F64], F64]] = {
    "year": _apply(_year),
    "month": _apply(_month),
    "day_of_month": _apply(_day_of_month),
    "day_of_year": _apply(_day_of_year),
    "day_of_week": _apply(_day_of_week),
    "days_in_month": _apply(_days_in_month),
    "hour": _apply(_hour),
    "minute": _apply(_minute),
}
