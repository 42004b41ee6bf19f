"""LogQL binary operators and label_replace over step grids (vectors.py): arithmetic, comparisons (filtering,
or 0/1 with `bool`) and the set operators and/or/unless, as PromQL evaluates them at each step; two vectors
are matched in vector_matching.py."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from collector.query.logql.ast import BinaryOp, LabelReplace
from collector.query.logql.regex import compile_go, expand_go
from collector.query.logql.vector_matching import arithmetic, set_operation
from collector.query.logql.vectors import Grid, QueryError

F64 = npt.NDArray[np.float64]
Key = tuple[tuple[str, str], ...]

_ARITHMETIC: dict[str, Callable[[F64, F64], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,  # Go's math.Mod: the sign of the dividend
    "^": np.power,
}
_COMPARISON: dict[str, Callable[[F64, F64], npt.NDArray[np.bool_]]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
}


def _key(labels: dict[str, str]) -> Key:
    return tuple(sorted(labels.items()))


def binary(expr: BinaryOp, left: Grid, right: Grid) -> Grid:
    if expr.op in ("and", "or", "unless"):
        if left.scalar or right.scalar:
            raise QueryError(f"set operator {expr.op} not allowed in binary scalar expression")
        return set_operation(expr.op, expr.matching, left, right)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if left.scalar and right.scalar:
            values, keep = _apply(expr, left.values, right.values)
            return Grid([{}], values, left.present.copy(), scalar=True)
        if left.scalar or right.scalar:
            vector, scalar = (right, left) if left.scalar else (left, right)
            a, b = (scalar.values[0], vector.values) if left.scalar else (vector.values, scalar.values[0])
            values, keep = _apply(expr, a, b)
            if expr.op in _COMPARISON and not expr.return_bool:
                values = vector.values  # a filtering comparison keeps the vector's own value, on either side
            return Grid(vector.labels, values, vector.present & keep)
        return arithmetic(lambda a, b: _apply(expr, a, b), expr.matching, left, right)


def _apply(expr: BinaryOp, a: F64, b: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
    """(values, where a sample is kept) for one operator over broadcastable operands."""
    if expr.op in _ARITHMETIC:
        values = _ARITHMETIC[expr.op](a, b)
        return values, np.ones(np.shape(values), dtype=bool)
    verdict = _COMPARISON[expr.op](a, b)
    if expr.return_bool:
        return verdict.astype(np.float64), np.ones(np.shape(verdict), dtype=bool)
    return np.broadcast_to(a, np.shape(verdict)).astype(np.float64), verdict


def label_replace(expr: LabelReplace, grid: Grid) -> Grid:
    """PromQL's label_replace: where the source value fully matches, dst = the replacement with $1 / ${name}
    expanded (an empty result removes dst); other series pass unchanged. Series that end up with the same
    labels are an error, as in PromQL."""
    if grid.scalar:
        raise QueryError("label_replace needs a vector, not a scalar")
    pattern = compile_go(f"^(?:{expr.regex})$")
    labels_out: list[dict[str, str]] = []
    for labels in grid.labels:
        m = pattern.match(labels.get(expr.src, ""))
        if m is None:
            labels_out.append(labels)
            continue
        value = expand_go(expr.replacement, m)
        new = dict(labels)
        if value:
            new[expr.dst] = value
        else:
            new.pop(expr.dst, None)
        labels_out.append(new)
    keys = [_key(labels) for labels in labels_out]
    for k in set(keys):
        rows = [i for i, key in enumerate(keys) if key == k]
        if len(rows) > 1 and (grid.present[rows].sum(axis=0) > 1).any():
            raise QueryError("vector cannot contain metrics with the same labelset")
    return Grid(labels_out, grid.values, grid.present)
