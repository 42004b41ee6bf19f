"""Binary operators between two vectors over step grids, as PromQL matches them: on identical label sets by
default, `on (...)` / `ignoring (...)` signatures, group_left / group_right for many-to-one, and the set
operators and/or/unless. Matching is decided at each step among the series present there."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from collector.query.logql.ast import VectorMatching
from collector.query.logql.vectors import Grid, QueryError

F64 = npt.NDArray[np.float64]
Key = tuple[tuple[str, str], ...]
# (left values, right values) -> (values, kept) for one operator, in the expression's own operand order
Apply = Callable[[F64, F64], tuple[F64, npt.NDArray[np.bool_]]]


def signature(labels: dict[str, str], m: VectorMatching | None) -> Key:
    if m is None:
        return tuple(sorted(labels.items()))
    if m.on:
        return tuple(sorted((k, labels[k]) for k in m.labels if k in labels))
    return tuple(sorted((k, v) for k, v in labels.items() if k not in m.labels))


def _groups(grid: Grid, m: VectorMatching | None) -> dict[Key, list[int]]:
    out: dict[Key, list[int]] = {}
    for i, labels in enumerate(grid.labels):
        out.setdefault(signature(labels, m), []).append(i)
    return out


def _result_labels(many: dict[str, str], one: dict[str, str], m: VectorMatching | None) -> dict[str, str]:
    if m is None:
        return dict(many)
    out = dict(many)
    if m.card == "one-to-one":
        out = (
            {k: v for k, v in out.items() if k in m.labels}
            if m.on
            else {k: v for k, v in out.items() if k not in m.labels}
        )
    for name in m.include:
        if one.get(name, ""):
            out[name] = one[name]
        else:
            out.pop(name, None)
    return out


def _text(key: Key) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in key) + "}"


def arithmetic(apply: Apply, m: VectorMatching | None, left: Grid, right: Grid) -> Grid:
    """Arithmetic and comparisons between two vectors; the "one" side must be unique per signature and step."""
    steps = left.values.shape[1]
    card = m.card if m is not None else "one-to-one"
    many, one = (right, left) if card == "one-to-many" else (left, right)
    one_groups = _groups(one, m)
    for sig, rows in one_groups.items():
        if len(rows) > 1 and (one.present[rows].sum(axis=0) > 1).any():
            side = "left" if one is left else "right"
            raise QueryError(
                f"found duplicate series for the match group {_text(sig)} on the {side} hand-side of the operation"
            )
    if card == "one-to-one":
        for sig, rows in _groups(many, m).items():
            if len(rows) > 1 and sig in one_groups and (many.present[rows].sum(axis=0) > 1).any():
                raise QueryError(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                )
    out: dict[Key, tuple[dict[str, str], F64, npt.NDArray[np.bool_]]] = {}
    for i, labels in enumerate(many.labels):
        for j in one_groups.get(signature(labels, m), []):
            both = many.present[i] & one.present[j]
            if not both.any():
                continue
            lv, rv = (one.values[j], many.values[i]) if many is right else (many.values[i], one.values[j])
            values, keep = apply(lv, rv)
            present = both & keep
            result = _result_labels(labels, one.labels[j], m)
            key = tuple(sorted(result.items()))
            if key not in out:
                out[key] = (result, np.zeros(steps), np.zeros(steps, dtype=bool))
            _labels, acc_values, acc_present = out[key]
            if (acc_present & present).any():
                raise QueryError("multiple matches for labels: grouping labels must ensure unique matches")
            acc_values[present] = values[present]
            acc_present |= present
    series = list(out.values())
    return Grid(
        [r[0] for r in series],
        np.array([r[1] for r in series], dtype=np.float64).reshape(len(series), steps),
        np.array([r[2] for r in series], dtype=bool).reshape(len(series), steps),
    )


def set_operation(op: str, m: VectorMatching | None, left: Grid, right: Grid) -> Grid:
    steps = left.values.shape[1]
    right_seen = {sig: right.present[rows].any(axis=0) for sig, rows in _groups(right, m).items()}
    nowhere = np.zeros(steps, dtype=bool)
    if op in ("and", "unless"):
        present = []
        for i, labels in enumerate(left.labels):
            other = right_seen.get(signature(labels, m), nowhere)
            present.append(left.present[i] & (other if op == "and" else ~other))
        return Grid(left.labels, left.values.copy(), np.array(present, dtype=bool).reshape(len(left.labels), steps))
    # or: every left sample, and each right sample whose signature no left sample has at that step
    left_seen = {sig: left.present[rows].any(axis=0) for sig, rows in _groups(left, m).items()}
    labels_out = list(left.labels)
    values = [left.values[i].copy() for i in range(len(left.labels))]
    present = [left.present[i].copy() for i in range(len(left.labels))]
    rows_by_labels = {tuple(sorted(labels.items())): i for i, labels in enumerate(left.labels)}
    for j, labels in enumerate(right.labels):
        fill = right.present[j] & ~left_seen.get(signature(labels, m), nowhere)
        row = rows_by_labels.get(tuple(sorted(labels.items())))
        if row is None:
            rows_by_labels[tuple(sorted(labels.items()))] = len(labels_out)
            labels_out.append(labels)
            values.append(np.where(fill, right.values[j], 0.0))
            present.append(fill)
            continue
        values[row][fill] = right.values[j][fill]
        present[row] = present[row] | fill
    return Grid(
        labels_out,
        np.array(values, dtype=np.float64).reshape(len(labels_out), steps),
        np.array(present, dtype=bool).reshape(len(labels_out), steps),
    )
