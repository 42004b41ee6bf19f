"""Range aggregations over one series' samples: the `*_over_time` functions, rate, rate_counter, bytes, and
the conversions of `| unwrap` (Loki's range_vector.go and metrics_extraction.go).

Sample times are nanoseconds; the window of step t is (t - offset - range, t - offset], and a step has a
point only where its window holds a sample.
"""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_GO_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)
_GO_DURATION_PART = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")
_GO_DURATION_NS = {"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
_HUMANIZE_BYTES = re.compile(r"([0-9.,]+)\s*([A-Za-z]*)")
_HUMANIZE_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtpe", start=1):
    _HUMANIZE_UNITS.update({_p: 1000**_i, _p + "b": 1000**_i, _p + "i": 1024**_i, _p + "ib": 1024**_i})


def parse_go_float(text: str) -> float:
    """strconv.ParseFloat: no spaces, no underscores (Python's float() accepts both)."""
    if _GO_FLOAT.fullmatch(text) is None:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    return float(text)


def parse_go_duration_seconds(text: str) -> float:
    """time.ParseDuration in seconds: `1h2m`, `1.5s`, `-300ms`, `0`; units ns us µs ms s m h only."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    total = 0.0
    pos = 0
    for m in _GO_DURATION_PART.finditer(body):
        if m.start() != pos or m.group(1) in ("", "."):
            break
        total += float(m.group(1)) * _GO_DURATION_NS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise ValueError(f'time: invalid duration "{text}"')
    return (-total if text.startswith("-") else total) / 1e9


def parse_humanize_bytes(text: str) -> float:
    """go-humanize ParseBytes: `42`, `42 MB`, `1.5KiB`, `2k` (SI powers of 1000, IEC of 1024), whole bytes."""
    m = _HUMANIZE_BYTES.fullmatch(text.strip())
    if m is None:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    number = m.group(1).replace(",", "")
    unit = m.group(2).lower()
    if unit not in _HUMANIZE_UNITS:
        raise ValueError(f"unhandled size name: {unit}")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{number}": invalid syntax') from None
    return float(math.floor(value * _HUMANIZE_UNITS[unit]))


CONVERSIONS = {
    "float": parse_go_float,
    "duration": parse_go_duration_seconds,
    "duration_seconds": parse_go_duration_seconds,
    "bytes": parse_humanize_bytes,
}


def _quantile(q: float, values: F64) -> float:
    if not len(values):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = np.sort(values)
    rank = q * (len(ordered) - 1)
    lower = max(0, math.floor(rank))
    upper = min(len(ordered) - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)


def _rate_counter(times_ns: I64, values: F64, range_ns: int) -> float:
    """Loki's extrapolatedRate(isCounter, isRate): Prometheus' rate with the range anchored on the samples
    (start = first sample - range, end = last sample), times in whole milliseconds."""
    if len(values) < 2:
        return 0.0
    ms = times_ns // 1_000_000
    range_ms = range_ns // 1_000_000
    result = float(values[-1] - values[0])
    last = 0.0
    for v in values:
        if v < last:
            result += last
        last = float(v)
    to_start = float(range_ms) / 1000
    to_end = 0.0
    sampled = float(ms[-1] - ms[0]) / 1000
    average = sampled / (len(values) - 1)
    if result > 0 and values[0] >= 0:
        to_zero = sampled * (float(values[0]) / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        result = float(np.float64(result) * (np.float64(interval) / np.float64(sampled)))
    return result / (range_ns / 1e9)


def _stdvar(values: F64) -> float:
    mean = aux = 0.0
    for count, v in enumerate(values, start=1):
        delta = float(v) - mean
        mean += delta / count
        aux += delta * (float(v) - mean)
    return aux / len(values)


def over_time(
    fn: str,
    times_ns: I64,
    values: F64,
    steps_ns: I64,
    range_ns: int,
    offset_ns: int = 0,
    param: float | None = None,
    unwrapped: bool = False,
) -> tuple[F64, npt.NDArray[np.bool_]]:
    """`fn` at each step over the samples (times sorted ascending); returns (values, present) per step.

    Without unwrap a sample's value is its line's size in bytes (count_over_time and rate ignore it)."""
    ends = steps_ns - offset_ns
    hi = np.searchsorted(times_ns, ends, side="right")
    lo = np.searchsorted(times_ns, ends - range_ns, side="right")
    counts = (hi - lo).astype(np.float64)
    present = counts > 0
    seconds = range_ns / 1e9
    cum = np.concatenate([[0.0], np.cumsum(values)])
    sums = cum[hi] - cum[lo]
    if fn == "count_over_time":
        return counts, present
    if fn == "rate":
        return (sums if unwrapped else counts) / seconds, present
    if fn in ("bytes_over_time", "sum_over_time"):
        return sums, present
    if fn == "bytes_rate":
        return sums / seconds, present
    if fn == "absent_over_time":
        return np.ones(len(steps_ns)), present
    out = np.zeros(len(steps_ns))
    for k in np.flatnonzero(present):
        window = values[lo[k] : hi[k]]
        if fn == "avg_over_time":
            out[k] = _avg(window)
        elif fn == "max_over_time":
            out[k] = _extreme(window, True)
        elif fn == "min_over_time":
            out[k] = _extreme(window, False)
        elif fn == "first_over_time":
            out[k] = window[0]
        elif fn == "last_over_time":
            out[k] = window[-1]
        elif fn == "stdvar_over_time":
            out[k] = _stdvar(window)
        elif fn == "stddev_over_time":
            out[k] = math.sqrt(_stdvar(window))
        elif fn == "quantile_over_time":
            out[k] = _quantile(float(param if param is not None else 0), window)
        elif fn == "rate_counter":
            out[k] = _rate_counter(times_ns[lo[k] : hi[k]], window, range_ns)
        else:
            raise ValueError(f"unsupported range aggregation {fn}")
    return out, present


def _avg(values: F64) -> float:
    # Loki's incremental mean, which keeps an infinite mean instead of turning it into NaN.
    mean = 0.0
    for count, v in enumerate(values, start=1):
        x = float(v)
        if math.isinf(mean):
            if math.isinf(x) and (mean > 0) == (x > 0):
                continue
            if not math.isinf(x) and not math.isnan(x):
                continue
        mean += x / count - mean / count
    return mean


def _extreme(values: F64, larger: bool) -> float:
    # NaN is replaced by the next sample, as Loki's max/min_over_time do.
    best = float(values[0])
    for v in values:
        x = float(v)
        if math.isnan(best) or (x > best if larger else x < best):
            best = x
    return best
