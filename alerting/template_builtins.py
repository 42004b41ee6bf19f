"""Go text/template's builtin functions (Go 1.19): comparison, logic, len, index, slice and escaping.

Values are goformat's Python stand-ins for Go values; comparisons follow Go's rules (an int and a float64
do not compare: `eq $value 1` is an error).
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Sequence

from alerting.goformat import go_type, sprint, sprint_value


class ExecError(Exception):
    """A template failed while executing (Prometheus puts the message in the annotation instead)."""


def go_truth(v: object) -> bool:
    """text/template's isTrue: zero values, nil and empty collections are false."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str | dict | list | tuple):
        return len(v) > 0
    return True


_INT, _FLOAT, _STRING, _BOOL = "int", "float", "string", "bool"


def basic_kind(v: object) -> str | None:
    if isinstance(v, bool):
        return _BOOL
    if isinstance(v, int):
        return _INT
    if isinstance(v, float):
        return _FLOAT
    if isinstance(v, str):
        return _STRING
    return None


def eq(arg1: object, *rest: object) -> bool:
    if not rest:
        raise ExecError("missing argument for comparison")
    k1 = basic_kind(arg1)
    for arg in rest:
        k2 = basic_kind(arg)
        if k1 != k2:
            if arg1 is not None and arg is not None:
                raise ExecError("incompatible types for comparison")
            truth = False
        elif k1 is None:
            if isinstance(arg1, dict | list) or isinstance(arg, dict | list):
                raise ExecError(f"non-comparable type {sprint_value(arg)}: {go_type(arg)}")
            truth = arg1 is arg if arg1 is None or arg is None else arg1 == arg
        else:
            truth = arg1 == arg
        if truth:
            return True
    return False


def ne(a: object, b: object) -> bool:
    return not eq(a, b)


def lt(a: object, b: object) -> bool:
    ka, kb = basic_kind(a), basic_kind(b)
    if ka is None or kb is None or ka == _BOOL or kb == _BOOL:
        raise ExecError("invalid type for comparison")
    if ka != kb:
        raise ExecError("incompatible types for comparison")
    return a < b  # type: ignore[operator]


def le(a: object, b: object) -> bool:
    return lt(a, b) or eq(a, b)


def gt(a: object, b: object) -> bool:
    return not le(a, b)


def ge(a: object, b: object) -> bool:
    return not lt(a, b)


def length(v: object) -> int:
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, dict | list | tuple):
        return len(v)
    raise ExecError(f"len of type {go_type(v)}")


def index(item: object, *indexes: object) -> object:
    if item is None:
        raise ExecError("index of untyped nil")
    for ix in indexes:
        if isinstance(item, dict):
            if not isinstance(ix, str):
                raise ExecError(f"value has type {go_type(ix)}; should be string")
            item = item.get(ix, "")
        elif isinstance(item, list | tuple | str):
            if isinstance(ix, bool) or not isinstance(ix, int):
                raise ExecError(f"cannot index slice/array with type {go_type(ix)}")
            if not 0 <= ix < len(item):
                raise ExecError(f"index out of range: {ix}")
            item = item[ix] if not isinstance(item, str) else item.encode()[ix]
        else:
            raise ExecError(f"can't index item of type {go_type(item)}")
    return item


def slice_(item: object, *indexes: object) -> object:
    if not isinstance(item, str | list):
        raise ExecError(f"can't slice item of type {go_type(item)}")
    bounds = [int(i) for i in indexes if isinstance(i, int)]
    if len(bounds) > 2 and isinstance(item, str):
        raise ExecError("cannot 3-index slice a string")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise ExecError(f"index out of range: {hi}")
    return item[lo:hi]


def not_(v: object) -> bool:
    return not go_truth(v)


def html_escape(*a: object) -> str:
    s = _eval_args(a)
    return html.escape(s, quote=True).replace("&#x27;", "&#39;").replace("\x00", "\ufffd")


def js_escape(*a: object) -> str:
    s = _eval_args(a)
    repl = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}
    return "".join(repl.get(c, c) for c in s)


def urlquery(*a: object) -> str:
    return urllib.parse.quote_plus(_eval_args(a), safe="")


def _eval_args(a: Sequence[object]) -> str:
    if len(a) == 1 and isinstance(a[0], str):
        return a[0]
    return sprint(list(a))


def call(fn: object, *a: object) -> object:
    raise ExecError(f"non-function of type {go_type(fn)}")
