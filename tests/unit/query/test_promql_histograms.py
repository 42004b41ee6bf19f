"""Classic-histogram quantiles: the vectorised form agrees with Prometheus' per-step algorithm."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.query.promql.histograms import bucket_fraction, bucket_quantile, bucket_quantile_steps

BOUNDS = [
    np.array([0.1, 0.5, 1.0, math.inf]),
    np.array([-1.0, -0.5, 0.3, math.inf]),
    np.array([0.0, 2.0, 4.0, 6.0, math.inf]),
    np.array([1.0, 2.0]),  # no +Inf bucket: NaN
    np.array([math.inf]),  # a single bucket: NaN
]


@pytest.mark.parametrize("bounds", BOUNDS, ids=lambda b: ",".join(map(str, b)))
@pytest.mark.parametrize("seed", range(4))
def test_vectorised_quantile_matches_per_step(bounds: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = 40
    counts = np.cumsum(rng.integers(0, 5, size=(len(bounds), steps)).astype(float), axis=0)
    # Some non-monotonic steps, some empty histograms, a rounding-level difference.
    counts[:, 3] = counts[::-1, 3]
    counts[:, 5] = 0.0
    if len(bounds) > 1:
        counts[-1, 7] = counts[-2, 7] * (1 + 1e-14)
    q = rng.choice([0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0, -0.5, 1.5, math.nan], size=steps)
    values, forced = bucket_quantile_steps(q, bounds, counts)
    for s in range(steps):
        want, want_forced = bucket_quantile(
            float(q[s]), [[float(b), float(c)] for b, c in zip(bounds, counts[:, s], strict=True)]
        )
        got = float(values[s])
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-12), (s, q[s])
        assert bool(forced[s]) == want_forced, s


@pytest.mark.parametrize(
    ("lower", "upper", "expected"),
    [
        (0.0, 4.0, 2 / 3),
        (0.0, 3.5, 0.5833333333333334),
        (0.0, 6.0, 1.0),
        (4.0, 0.0, 0.0),  # lower >= upper
        (-math.inf, math.inf, 1.0),
        (math.nan, 1.0, math.nan),
    ],
)
def test_bucket_fraction(lower: float, upper: float, expected: float) -> None:
    buckets = [[0.0, 0.0], [2.0, 1.0], [4.0, 2.0], [6.0, 3.0], [math.inf, 3.0]]
    got = bucket_fraction(lower, upper, buckets)
    assert (math.isnan(expected) and math.isnan(got)) or got == pytest.approx(expected)
