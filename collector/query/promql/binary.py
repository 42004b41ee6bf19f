"""Binary operators: arithmetic, comparisons (with `bool`), set operators and vector matching."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from collector.query.promql.errors import SAME_LABELSET, bad_data, execution
from collector.query.promql.parse import Expr, op_name
from collector.query.promql.values import F64, I64, NAME, Grid, Labels, ScalarGrid, Value, merge_rows

if TYPE_CHECKING:
    from collector.query.promql.engine import Evaluator

ARITHMETIC: dict[str, Callable[[F64, F64], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
    "atan2": np.arctan2,
}
COMPARISON: dict[str, Callable[[F64, F64], np.ndarray]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}
SET_OPS = ("and", "or", "unless")


def format_labels(labels: Labels) -> str:
    """Prometheus' labels.String(): `{a="b", c="d"}`, sorted by name."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _apply(op: str, a: F64, b: F64) -> F64:
    with np.errstate(all="ignore"):
        return ARITHMETIC[op](a, b)


def binary(ev: Evaluator, node: Expr, times: I64) -> Value:
    op = op_name(node.op)
    mod = node.modifier
    return_bool = bool(mod is not None and mod.return_bool)
    lhs = ev.eval(node.lhs, times)
    rhs = ev.eval(node.rhs, times)
    if isinstance(lhs, ScalarGrid) and isinstance(rhs, ScalarGrid):
        if op in COMPARISON:
            with np.errstate(all="ignore"):
                return ScalarGrid(COMPARISON[op](lhs.values, rhs.values).astype(np.float64))
        return ScalarGrid(_apply(op, lhs.values, rhs.values))
    if isinstance(lhs, Grid) and isinstance(rhs, ScalarGrid):
        return _vector_scalar(op, lhs, rhs.values[None, :], swap=False, return_bool=return_bool)
    if isinstance(lhs, ScalarGrid) and isinstance(rhs, Grid):
        return _vector_scalar(op, rhs, lhs.values[None, :], swap=True, return_bool=return_bool)
    if isinstance(lhs, Grid) and isinstance(rhs, Grid):
        if op in SET_OPS:
            return _set_op(op, lhs, rhs, mod)
        return _vector_vector(op, lhs, rhs, mod, return_bool)
    raise bad_data(f"binary operator {op!r} not allowed on these operand types")


def _vector_scalar(op: str, g: Grid, s: F64, *, swap: bool, return_bool: bool) -> Grid:
    a, b = (s, g.values) if swap else (g.values, s)
    if op in COMPARISON:
        with np.errstate(all="ignore"):
            cond = COMPARISON[op](a, b)
        if return_bool:
            return Grid(g.labels, cond.astype(np.float64), g.present, np.ones(g.rows, dtype=bool))
        # The vector's own value is kept, whichever side it is on.
        return Grid(g.labels, g.values, g.present & cond, g.drop).compact()
    vals = _apply(op, a, b)
    return Grid(g.labels, np.broadcast_to(vals, g.values.shape).copy(), g.present, np.ones(g.rows, dtype=bool))


def _matching(mod: Expr) -> tuple[bool, list[str]]:
    """(on, labels): `on(...)` or `ignoring(...)`; no modifier means ignoring nothing."""
    if mod is None or mod.matching is None:
        return False, []
    return str(mod.matching.type).endswith("Include"), list(mod.matching.labels)


def _signature(g: Grid, i: int, on: bool, names: list[str]) -> tuple[tuple[str, str], ...]:
    # Delayed name removal: rows keep __type__/__unit__ until the end, and they take part in matching.
    lab = g.labels[i]
    if on:
        return tuple((k, lab.get(k, "")) for k in sorted(set(names)))
    skip = {*names, NAME}
    return tuple(sorted((k, v) for k, v in lab.items() if k not in skip))


def _sig_presence(g: Grid, sigs: list[tuple[tuple[str, str], ...]]) -> dict[tuple[tuple[str, str], ...], np.ndarray]:
    out: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
    for i, sig in enumerate(sigs):
        if sig in out:
            out[sig] = out[sig] | g.present[i]
        else:
            out[sig] = g.present[i].copy()
    return out


def _set_op(op: str, lhs: Grid, rhs: Grid, mod: Expr) -> Grid:
    on, names = _matching(mod)
    lsig = [_signature(lhs, i, on, names) for i in range(lhs.rows)]
    rsig = [_signature(rhs, i, on, names) for i in range(rhs.rows)]
    steps = lhs.values.shape[1]
    none = np.zeros(steps, dtype=bool)
    if op == "and":
        rp = _sig_presence(rhs, rsig)
        present = lhs.present.copy()
        for i in range(lhs.rows):
            present[i] &= rp.get(lsig[i], none)
        return Grid(lhs.labels, lhs.values, present, lhs.drop).compact()
    if op == "unless":
        rp = _sig_presence(rhs, rsig)
        present = lhs.present.copy()
        for i in range(lhs.rows):
            present[i] &= ~rp.get(lsig[i], none)
        return Grid(lhs.labels, lhs.values, present, lhs.drop).compact()
    lp = _sig_presence(lhs, lsig)
    rpresent = rhs.present.copy()
    for i in range(rhs.rows):
        rpresent[i] &= ~lp.get(rsig[i], none)
    out = Grid(
        lhs.labels + rhs.labels,
        np.vstack([lhs.values, rhs.values]),
        np.vstack([lhs.present, rpresent]),
        np.concatenate([lhs.drop, rhs.drop]),
    ).compact()
    return merge_rows(out)


def _vector_vector(op: str, lhs: Grid, rhs: Grid, mod: Expr, return_bool: bool) -> Grid:
    on, names = _matching(mod)
    card = str(mod.card) if mod is not None else "OneToOne"
    include = list(mod.group_labels) if mod is not None and mod.group_labels else []
    one_to_many = card.endswith("OneToMany")
    many_to_one = card.endswith("ManyToOne")
    if card.endswith("ManyToMany"):
        raise bad_data("many-to-many only allowed for set operators")
    many, one = (rhs, lhs) if one_to_many else (lhs, rhs)
    msig = [_signature(many, i, on, names) for i in range(many.rows)]
    osig = [_signature(one, i, on, names) for i in range(one.rows)]
    one_groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for i, sig in enumerate(osig):
        one_groups.setdefault(sig, []).append(i)
    side = "left" if one_to_many else "right"
    one_present: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
    for sig, idx in one_groups.items():
        counts = one.present[idx].sum(axis=0)
        if (counts > 1).any():
            s = int(np.argmax(counts > 1))
            dup = [i for i in idx if one.present[i, s]]
            raise execution(
                f"found duplicate series for the match group {format_labels(dict(sig))} on the {side} hand-side "
                f"of the operation: [{format_labels(one.labels[dup[0]])}, {format_labels(one.labels[dup[1]])}]"
                ";many-to-many matching not allowed: matching labels must be unique on one side"
            )
        one_present[sig] = counts > 0
    if not (many_to_one or one_to_many):
        many_groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
        for i, sig in enumerate(msig):
            many_groups.setdefault(sig, []).append(i)
        for sig, idx in many_groups.items():
            if len(idx) > 1 and sig in one_present:
                counts = (many.present[idx] & one_present[sig][None, :]).sum(axis=0)
                if (counts > 1).any():
                    raise execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                    )
    labels: list[Labels] = []
    values: list[F64] = []
    present: list[np.ndarray] = []
    drop: list[bool] = []
    comparison = op in COMPARISON

    def emit(many_v: F64, one_v: F64, p: np.ndarray, lab: Labels, many_drop: bool) -> None:
        a, b = (one_v, many_v) if one_to_many else (many_v, one_v)
        if comparison:
            with np.errstate(all="ignore"):
                cond = COMPARISON[op](a, b)
            if return_bool:
                v = cond.astype(np.float64)
            else:
                v = np.broadcast_to(a, p.shape)
                p = p & cond
        else:
            v = _apply(op, a, b)
        if p.any():
            labels.append(lab)
            values.append(np.broadcast_to(v, p.shape).copy())
            present.append(p)
            drop.append(return_bool or not comparison or many_drop)

    for m in range(many.rows):
        for o in one_groups.get(msig[m], []):
            p = many.present[m] & one.present[o]
            if p.any():
                lab = _result_labels(many.labels[m], one.labels[o], on, names, include, card)
                emit(many.values[m], one.values[o], p, lab, bool(many.drop[m]))
    # Experimental fill modifiers: fill_left(v) stands in for a missing "many" side (the left one, or the
    # right one with group_right), fill_right(v) for a missing "one" side.
    fill_many, fill_one = _fill_values(mod)
    steps = lhs.values.shape[1]
    if fill_one is not None:
        for m in range(many.rows):
            p = many.present[m] & ~one_present.get(msig[m], np.zeros(steps, dtype=bool))
            if p.any():
                lab = _result_labels(many.labels[m], {}, on, names, include, card)
                emit(many.values[m], np.full(steps, fill_one), p, lab, bool(many.drop[m]))
    if fill_many is not None:
        many_present: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        for m, sig in enumerate(msig):
            many_present[sig] = many_present.get(sig, np.zeros(steps, dtype=bool)) | many.present[m]
        for o in range(one.rows):
            p = one.present[o] & ~many_present.get(osig[o], np.zeros(steps, dtype=bool))
            if p.any():
                lab = {k: v for k, v in osig[o] if v}
                emit(np.full(steps, fill_many), one.values[o], p, lab, True)
    if not labels:
        return Grid.empty(lhs.values.shape[1])
    out = Grid(labels, np.vstack(values), np.vstack(present), np.array(drop, dtype=bool))
    message = (
        "multiple matches for labels: grouping labels must ensure unique matches"
        if many_to_one or one_to_many
        else SAME_LABELSET
    )
    return merge_rows(out, message=message)


def _fill_values(mod: Expr) -> tuple[float | None, float | None]:
    fill = getattr(mod, "fill_values", None) if mod is not None else None
    if fill is None:
        return None, None
    return fill.lhs, fill.rhs


def _result_labels(many: Labels, one: Labels, on: bool, names: list[str], include: list[str], card: str) -> Labels:
    lab = dict(many)
    if card.endswith("OneToOne"):
        if on:
            lab = {k: v for k, v in lab.items() if k in names}
        else:
            for k in names:
                lab.pop(k, None)
    for k in include:
        v = one.get(k, "")
        if v:
            lab[k] = v
        else:
            lab.pop(k, None)
    return lab
