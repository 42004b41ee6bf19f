"""The functions of LogQL's line_format and label_format templates: Go text/template's builtins, Loki's own
(ToUpper, regexReplaceAll, alignLeft, ...) and the sprig subset Loki enables (lower, trunc, default, add,
...), with Go's argument order (a pipeline's value is the last argument) and Go's printing of values.

A function raises TemplateExecError for what Go reports as an execution error.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
import urllib.parse
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from collector.query.logql.range_functions import parse_go_duration_seconds, parse_humanize_bytes
from collector.query.logql.regex import compile_go, expand_go


class TemplateExecError(Exception):
    """A template failed while running: Loki keeps the entry and marks it TemplateFormatErr."""


class GoTime:
    """A time.Time in a template (from __timestamp__): printed as Go prints one, in UTC."""

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __str__(self) -> str:
        seconds, frac = divmod(self.ns, 1_000_000_000)
        text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        if frac:
            text += "." + f"{frac:09d}".rstrip("0")
        return text + " +0000 UTC"


def _epoch(divisor: int, fn: str) -> Callable[[object], str]:
    def epoch(t: object) -> str:
        if not isinstance(t, GoTime):
            raise TemplateExecError(f"error calling {fn}: wrong type for value; expected time.Time")
        return str(t.ns // divisor)

    return epoch


def go_float(f: float) -> str:
    """fmt's %v of a float64 (strconv's 'g' with the shortest precision): the shortest digits that round-trip,
    in exponent form when the exponent is below -4 or at least 6 (1e+06, 1.5e-05, 123456)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    point = len(text) + exp  # the decimal point's position in the digits
    x = point - 1
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{text}"
    if point >= len(text):
        return neg + text + "0" * (point - len(text))
    return f"{neg}{text[:point]}.{text[point:]}"


def go_sprint(value: object) -> str:
    """How a template prints a value ({{ .x }} and fmt.Sprint)."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def go_truth(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | list | dict):
        return bool(value)
    return True


def _string(value: object, fn: str) -> str:
    if not isinstance(value, str):
        raise TemplateExecError(
            f"error calling {fn}: wrong type for value; expected string; got {type(value).__name__}"
        )
    return value


def _to_int(value: object) -> int:
    # spf13/cast ToInt64 as sprig uses it: strings in base 0 (0x.., 0o..), floats truncated, anything else 0.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return 0 if math.isnan(value) or math.isinf(value) else int(value)
    if isinstance(value, str):
        try:
            return int(value.strip() or "x", 0)
        except ValueError:
            return 0
    return 0


def _to_float(value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def _compare(fn: str, a: object, b: object) -> int:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        if type(a) is not type(b):
            raise TemplateExecError(f"error calling {fn}: incompatible types for comparison")
        if fn not in ("eq", "ne"):
            raise TemplateExecError(f"error calling {fn}: invalid type for comparison")
    elif isinstance(a, numeric) and isinstance(b, numeric):
        pass
    elif type(a) is not type(b) or not isinstance(a, str):
        raise TemplateExecError(f"error calling {fn}: incompatible types for comparison")
    return (a > b) - (a < b)  # type: ignore[operator]


def _eq(first: object, *others: object) -> bool:
    if not others:
        raise TemplateExecError("error calling eq: missing argument for comparison")
    return any(_compare("eq", first, other) == 0 for other in others)


def _title(s: object) -> str:
    # strings.Title: the first letter of each word upper-cased, the rest untouched.
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), _string(s, "title"))


def _trunc(n: object, s: object) -> str:
    text, k = _string(s, "trunc"), _to_int(n)
    if k < 0:
        return text[max(len(text) + k, 0) :]
    return text[:k]


def _substr(start: object, end: object, s: object) -> str:
    text, a, b = _string(s, "substr"), _to_int(start), _to_int(end)
    if a < 0:
        return text[:b]
    if b < 0 or b > len(text):
        return text[a:]
    return text[a:b]


def _indent(n: object, s: object) -> str:
    pad = " " * _to_int(n)
    return pad + _string(s, "indent").replace("\n", "\n" + pad)


def _align(right: bool) -> Callable[[object, object], str]:
    def align(n: object, s: object) -> str:
        count, text = _to_int(n), _string(s, "alignRight" if right else "alignLeft")
        if count < 0:
            return text
        if len(text) > count:
            return text[len(text) - count :] if right else text[:count]
        pad = " " * (count - len(text))
        return pad + text if right else text + pad

    return align


def _regex_replace(literal: bool) -> Callable[[object, object, object], str]:
    def replace(regex: object, s: object, repl: object) -> str:
        try:
            pattern = compile_go(_string(regex, "regexReplaceAll"))
        except re.error as exc:
            raise TemplateExecError(f"error calling regexReplaceAll: {exc}") from None
        text, replacement = _string(s, "regexReplaceAll"), _string(repl, "regexReplaceAll")
        if literal:
            return pattern.sub(lambda _m: replacement, text)
        return pattern.sub(lambda m: expand_go(replacement, m), text)

    return replace


def _b64dec(s: object) -> str:
    try:
        return base64.b64decode(_string(s, "b64dec"), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        return str(exc)  # sprig returns the error text as the value


def _default(default: object, *given: object) -> object:
    value = given[0] if given else None
    return value if go_truth(value) else default


def _converted(parse: Callable[[str], float], fn: str) -> Callable[[object], float]:
    def convert(s: object) -> float:
        try:
            return parse(_string(s, fn))
        except ValueError as exc:
            raise TemplateExecError(f"error calling {fn}: {exc}") from None

    return convert


def _printf(fmt: object, *args: object) -> str:
    text = _string(fmt, "printf")
    values = list(args)

    def verb(m: re.Match[str]) -> str:
        flags, width, precision, kind = m.group(1), m.group(2), m.group(3), m.group(4)
        if kind == "%":
            return "%"
        if not values:
            return f"%!{kind}(MISSING)"
        v = values.pop(0)
        spec = flags.replace("+", "+") + width + (precision or "")
        if kind in ("v", "s"):
            return format(go_sprint(v), ("<" if "-" in flags else ">") + width if width else "")
        if kind == "q":
            return '"' + go_sprint(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if kind == "t":
            return go_sprint(v)
        if kind in ("d", "x", "X", "o", "b"):
            if not isinstance(v, int) or isinstance(v, bool):
                return f"%!{kind}({type(v).__name__}={go_sprint(v)})"
            return format(v, flags.replace("-", "<") + width + kind)
        if not isinstance(v, int | float) or isinstance(v, bool):
            return f"%!{kind}({type(v).__name__}={go_sprint(v)})"
        return format(float(v), spec.replace("-", "<") + kind)

    out = re.sub(r"%([-+# 0]*)(\d*)(\.\d+)?([a-zA-Z%])", verb, text)
    if values:
        out += "%!(EXTRA " + ", ".join(f"{type(v).__name__}={go_sprint(v)}" for v in values) + ")"
    return out


def _int_op(op: Callable[[int, int], int], fn: str) -> Callable[..., int]:
    def run(a: object, b: object) -> int:
        x, y = _to_int(a), _to_int(b)
        if fn in ("div", "mod") and y == 0:
            raise TemplateExecError(f"error calling {fn}: runtime error: integer divide by zero")
        return op(x, y)

    return run


def _go_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q  # Go truncates toward zero


def _round(value: object, places: object = 0) -> float:
    # sprig's round: ceil when the fraction (signed, as math.Modf gives it) is at least .5, else floor.
    pow10 = math.pow(10, _to_int(places))
    digit = pow10 * _to_float(value)
    fraction = math.modf(digit)[0]
    return (math.ceil(digit) if fraction >= 0.5 else math.floor(digit)) / pow10


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # Go text/template builtins
    "eq": _eq,
    "ne": lambda a, b: _compare("ne", a, b) != 0,
    "lt": lambda a, b: _compare("lt", a, b) < 0,
    "le": lambda a, b: _compare("le", a, b) <= 0,
    "gt": lambda a, b: _compare("gt", a, b) > 0,
    "ge": lambda a, b: _compare("ge", a, b) >= 0,
    "not": lambda a: not go_truth(a),
    "len": lambda a: len(a) if isinstance(a, str | list | dict) else 0,
    "print": lambda *a: "".join(go_sprint(v) for v in a),
    "printf": _printf,
    "println": lambda *a: " ".join(go_sprint(v) for v in a) + "\n",
    # Loki's own
    "ToLower": lambda s: _string(s, "ToLower").lower(),
    "ToUpper": lambda s: _string(s, "ToUpper").upper(),
    "Replace": lambda s, old, new, n: _string(s, "Replace").replace(old, new, -1 if _to_int(n) < 0 else _to_int(n)),
    "Trim": lambda s, cutset: _string(s, "Trim").strip(cutset),
    "TrimLeft": lambda s, cutset: _string(s, "TrimLeft").lstrip(cutset),
    "TrimRight": lambda s, cutset: _string(s, "TrimRight").rstrip(cutset),
    "TrimPrefix": lambda s, prefix: _string(s, "TrimPrefix").removeprefix(prefix),
    "TrimSuffix": lambda s, suffix: _string(s, "TrimSuffix").removesuffix(suffix),
    "TrimSpace": lambda s: _string(s, "TrimSpace").strip(),
    "regexReplaceAll": _regex_replace(literal=False),
    "regexReplaceAllLiteral": _regex_replace(literal=True),
    "count": lambda regex, s: len(compile_go(_string(regex, "count")).findall(_string(s, "count"))),
    "urlencode": lambda s: urllib.parse.quote_plus(_string(s, "urlencode")),
    "urldecode": lambda s: urllib.parse.unquote_plus(_string(s, "urldecode")),
    "bytes": _converted(parse_humanize_bytes, "bytes"),
    "duration": _converted(parse_go_duration_seconds, "duration"),
    "duration_seconds": _converted(parse_go_duration_seconds, "duration_seconds"),
    "unixEpoch": _epoch(1_000_000_000, "unixEpoch"),
    "unixEpochMillis": _epoch(1_000_000, "unixEpochMillis"),
    "unixEpochNanos": _epoch(1, "unixEpochNanos"),
    "alignLeft": _align(right=False),
    "alignRight": _align(right=True),
    # the sprig subset Loki enables
    "b64enc": lambda s: base64.b64encode(_string(s, "b64enc").encode()).decode(),
    "b64dec": _b64dec,
    "lower": lambda s: _string(s, "lower").lower(),
    "upper": lambda s: _string(s, "upper").upper(),
    "title": _title,
    "trunc": _trunc,
    "substr": _substr,
    "contains": lambda sub, s: _string(sub, "contains") in _string(s, "contains"),
    "hasPrefix": lambda prefix, s: _string(s, "hasPrefix").startswith(_string(prefix, "hasPrefix")),
    "hasSuffix": lambda suffix, s: _string(s, "hasSuffix").endswith(_string(suffix, "hasSuffix")),
    "indent": _indent,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "replace": lambda old, new, s: _string(s, "replace").replace(_string(old, "replace"), _string(new, "replace")),
    "repeat": lambda n, s: _string(s, "repeat") * max(_to_int(n), 0),
    "trim": lambda s: _string(s, "trim").strip(),
    "trimAll": lambda cutset, s: _string(s, "trimAll").strip(_string(cutset, "trimAll")),
    "trimPrefix": lambda prefix, s: _string(s, "trimPrefix").removeprefix(_string(prefix, "trimPrefix")),
    "trimSuffix": lambda suffix, s: _string(s, "trimSuffix").removesuffix(_string(suffix, "trimSuffix")),
    "int": _to_int,
    "float64": _to_float,
    "add": _int_op(lambda a, b: a + b, "add"),
    "sub": _int_op(lambda a, b: a - b, "sub"),
    "mul": _int_op(lambda a, b: a * b, "mul"),
    "div": _int_op(_go_div, "div"),
    "mod": _int_op(lambda a, b: a - _go_div(a, b) * b, "mod"),
    "addf": lambda a, b: _to_float(a) + _to_float(b),
    "subf": lambda a, b: _to_float(a) - _to_float(b),
    "mulf": lambda a, b: _to_float(a) * _to_float(b),
    "divf": lambda a, b: _to_float(a) / _to_float(b) if _to_float(b) else math.copysign(math.inf, _to_float(a)),
    "max": lambda a, *b: max([_to_int(a), *map(_to_int, b)]),
    "min": lambda a, *b: min([_to_int(a), *map(_to_int, b)]),
    "maxf": lambda a, *b: max([_to_float(a), *map(_to_float, b)]),
    "minf": lambda a, *b: min([_to_float(a), *map(_to_float, b)]),
    "ceil": lambda a: float(math.ceil(_to_float(a))),
    "floor": lambda a: float(math.floor(_to_float(a))),
    "round": _round,
    "default": _default,
}
# `and` and `or` short-circuit and return an operand, so the executor evaluates them itself.
CONTROL_FUNCTIONS = ("and", "or")
