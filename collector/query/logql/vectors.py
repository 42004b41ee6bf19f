"""LogQL's vector aggregations over a step grid (binary operators are in binops.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.query.logql.ast import VectorAggregation

F64 = npt.NDArray[np.float64]
Key = tuple[tuple[str, str], ...]


class QueryError(Exception):
    """A query that cannot be answered as asked (Loki answers 400 with the message as text)."""


@dataclass
class Grid:
    """Series over the step grid: values (rows, steps) and where each has a point."""

    labels: list[dict[str, str]]
    values: F64
    present: npt.NDArray[np.bool_]
    scalar: bool = False


def _group_key(labels: dict[str, str], grouping: tuple[str, ...], without: bool) -> dict[str, str]:
    if without:
        return {k: v for k, v in labels.items() if k not in grouping}
    return {k: labels[k] for k in grouping if labels.get(k, "") != ""}


def aggregate(expr: VectorAggregation, grid: Grid) -> Grid:
    if grid.scalar:
        raise QueryError(f"{expr.op} needs a vector, not a scalar")
    steps = grid.values.shape[1]
    if expr.op in ("topk", "bottomk"):
        return _topk(expr, grid)
    if expr.op in ("sort", "sort_desc"):
        return _sort(grid, descending=expr.op == "sort_desc")
    groups: dict[Key, tuple[dict[str, str], list[int]]] = {}
    for i, labels in enumerate(grid.labels):
        g = _group_key(labels, expr.grouping, expr.without)
        groups.setdefault(tuple(sorted(g.items())), (g, []))[1].append(i)
    values = np.zeros((len(groups), steps))
    present = np.zeros((len(groups), steps), dtype=bool)
    for row, (_g, members) in enumerate(groups.values()):
        v = grid.values[members]
        p = grid.present[members]
        n = p.sum(axis=0)
        present[row] = n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            if expr.op == "sum":
                values[row] = np.where(p, v, 0).sum(axis=0)
            elif expr.op == "count":
                values[row] = n
            elif expr.op == "avg":
                values[row] = np.where(p, v, 0).sum(axis=0) / np.maximum(n, 1)
            elif expr.op == "min":
                values[row] = np.where(p, v, np.inf).min(axis=0)
            elif expr.op in ("stddev", "stdvar"):
                # Population variance (PromQL's), over the members present at each step.
                mean = np.where(p, v, 0).sum(axis=0) / np.maximum(n, 1)
                var = np.where(p, (v - mean) ** 2, 0).sum(axis=0) / np.maximum(n, 1)
                values[row] = np.sqrt(var) if expr.op == "stddev" else var
            else:
                values[row] = np.where(p, v, -np.inf).max(axis=0)
    return Grid([g for g, _ in groups.values()], values, present)


def _sort(grid: Grid, descending: bool) -> Grid:
    """Rows ordered by their value at the last step (the only one of an instant query); NaN last."""
    if not grid.labels:
        return grid
    last = grid.values[:, -1]
    key = np.where(np.isnan(last), np.inf, -last if descending else last)
    order = np.argsort(key, kind="stable")
    return Grid([grid.labels[i] for i in order], grid.values[order], grid.present[order])


def _topk(expr: VectorAggregation, grid: Grid) -> Grid:
    """The k largest (topk) or smallest (bottomk) series per group and step; the series keep their labels."""
    k = int(expr.param or 0)
    present = np.zeros_like(grid.present)
    groups: dict[Key, list[int]] = {}
    for i, labels in enumerate(grid.labels):
        groups.setdefault(tuple(sorted(_group_key(labels, expr.grouping, expr.without).items())), []).append(i)
    for members in groups.values():
        idx = np.asarray(members)
        for s in range(grid.values.shape[1]):
            live = idx[grid.present[idx, s]]
            if k > 0 and len(live):
                sign = -1.0 if expr.op == "topk" else 1.0
                best = live[np.argsort(sign * grid.values[live, s], kind="stable")[:k]]
                present[best, s] = True
    return Grid(grid.labels, grid.values, present)
