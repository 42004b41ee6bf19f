"""Instant-vector arithmetic over a step grid: LogQL's vector aggregations and binary operators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.query.logql.ast import BinaryOp, VectorAggregation

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
    if expr.op == "topk":
        return _topk(expr, grid)
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
            else:
                values[row] = np.where(p, v, -np.inf).max(axis=0)
    return Grid([g for g, _ in groups.values()], values, present)


def _topk(expr: VectorAggregation, grid: Grid) -> Grid:
    """The k largest series per group and step; the series keep all their labels."""
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
                best = live[np.argsort(-grid.values[live, s], kind="stable")[:k]]
                present[best, s] = True
    return Grid(grid.labels, grid.values, present)


_OPS: dict[str, Callable[[F64, F64], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
}


def binary(expr: BinaryOp, left: Grid, right: Grid) -> Grid:
    """Arithmetic: scalar with scalar or vector, and vector with vector matched on identical label sets."""
    fn = _OPS[expr.op]
    with np.errstate(invalid="ignore", divide="ignore"):
        if left.scalar and right.scalar:
            return Grid([{}], fn(left.values, right.values), left.present.copy(), scalar=True)
        if right.scalar:
            return Grid(left.labels, fn(left.values, right.values[0]), left.present.copy())
        if left.scalar:
            return Grid(right.labels, fn(left.values[0], right.values), right.present.copy())
        index = {tuple(sorted(labels.items())): i for i, labels in enumerate(right.labels)}
        labels_out, rows, present = [], [], []
        for i, labels in enumerate(left.labels):
            j = index.get(tuple(sorted(labels.items())))
            if j is None:
                continue
            labels_out.append(labels)
            rows.append(fn(left.values[i], right.values[j]))
            present.append(left.present[i] & right.present[j])
        steps = left.values.shape[1]
        return Grid(
            labels_out,
            np.array(rows).reshape(len(rows), steps),
            np.array(present, dtype=bool).reshape(len(rows), steps),
        )
