"""Go's fmt as templates see it: Sprint, Sprintf's verbs, %v of float64, strconv.Quote.

Values are Python stand-ins for Go's: bool, int (Go int), float (float64), str, None (nil), dict (a map,
printed with sorted keys as fmt does) and list (a slice). Output must equal Go's byte for byte, since alert
annotations are compared with Prometheus' (tests/integration/test_alerting_promtool.py checks it).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_VERB_RE = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.)?", re.DOTALL)


def go_type(v: object) -> str:
    """The Go type name fmt prints in %!verb(type=value)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map[string]string"
    if isinstance(v, list):
        return "[]interface {}"
    return type(v).__name__


def float_digits(v: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of a finite, nonzero |v| and the decimal point position."""
    _, digits, exponent = Decimal(repr(abs(v))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    dp = len(digits) + exponent
    return text, dp


def _special(v: float) -> str | None:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def format_float(v: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(v, verb, prec, 64) with fmt's spelling of Inf and NaN (+Inf, -Inf, NaN)."""
    special = _special(v)
    if special is not None:
        return special
    if verb in "eE":
        out = f"{v:.{6 if prec < 0 else prec}e}"
        return out.upper() if verb == "E" else out
    if verb in "fF":
        if prec < 0:
            if v == 0:
                return "-0" if math.copysign(1, v) < 0 else "0"
            digits, dp = float_digits(v)
            prec = max(len(digits) - dp, 0)
        return f"{v:.{prec}f}"
    # g, G: shortest digits when prec < 0, in %e form once the exponent is < -4 or >= 6 (strconv's rule)
    if prec >= 0:
        out = f"{v:.{max(prec, 1)}g}"
        return out.upper() if verb == "G" else out
    neg = math.copysign(1, v) < 0
    if v == 0:
        return "-0" if neg else "0"
    digits, dp = float_digits(v)
    exp = dp - 1
    eprec = 6
    if exp < -4 or exp >= eprec:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        out = f"{mant}{'E' if verb == 'G' else 'e'}{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif dp <= 0:
        out = "0." + "0" * (-dp) + digits
    elif dp >= len(digits):
        out = digits + "0" * (dp - len(digits))
    else:
        out = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + out


def go_quote(s: str) -> str:
    """strconv.Quote: a double-quoted Go string literal, printable characters kept as they are."""
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == " " or (c.isprintable() and c not in "\u00a0\u2028\u2029"):
            out.append(c)
        elif c in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[c])
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)


def sprint_value(v: object) -> str:
    """fmt's %v of one value."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, complex):
        imag = format_float(v.imag)
        return f"({format_float(v.real)}{'' if imag[0] in '+-' else '+'}{imag}i)"
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "map[" + " ".join(f"{sprint_value(k)}:{sprint_value(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(sprint_value(x) for x in v) + "]"
    go_string = getattr(v, "go_string", None)
    if callable(go_string):
        return str(go_string())
    return str(v)


def sprint(args: list[object]) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(sprint_value(a))
    return "".join(out)


def sprintln(args: list[object]) -> str:
    return " ".join(sprint_value(a) for a in args) + "\n"


def _pad(s: str, flags: str, width: int | None, numeric: bool) -> str:
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    if "0" in flags and numeric:
        sign = s[0] if s[:1] in "+-" else ""
        body = s[len(sign) :]
        return sign + "0" * (width - len(s)) + body
    return " " * (width - len(s)) + s


def _bad(verb: str, v: object) -> str:
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(v)}={sprint_value(v)})"


def _format_one(verb: str, flags: str, width: int | None, prec: int | None, v: object) -> str:
    numeric = False
    if v is None:
        s = "<nil>" if verb == "v" else _bad(verb, v)
    elif isinstance(v, bool):
        s = ("true" if v else "false") if verb in "tv" else _bad(verb, v)
    elif isinstance(v, int):
        numeric = True
        if verb in "dv":
            s = str(v)
        elif verb == "b":
            s = format(v, "b")
        elif verb == "o":
            s = format(v, "o")
        elif verb == "O":
            s = ("-" if v < 0 else "") + "0o" + format(abs(v), "o")
        elif verb in "xX":
            s = format(v, verb)
        elif verb == "c":
            s = chr(v)
        elif verb == "q":
            s = "'" + go_quote(chr(v))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        elif verb == "U":
            s = f"U+{v:04X}"
        else:
            s, numeric = _bad(verb, v), False
        if numeric and verb in "dv" and v >= 0:
            s = ("+" if "+" in flags else " " if " " in flags else "") + s
    elif isinstance(v, float):
        numeric = True
        if verb in "vgG":
            s = format_float(v, "g" if verb == "v" else verb, -1 if prec is None else prec)
        elif verb in "eEfF":
            s = format_float(v, verb, 6 if prec is None else prec)
        else:
            s, numeric = _bad(verb, v), False
        if numeric and "+" in flags and not s.startswith(("-", "+")):
            s = "+" + s
        elif numeric and " " in flags and not s.startswith(("-", "+")):
            s = " " + s
        if s in ("+Inf", "-Inf", "NaN"):
            numeric = False
    elif isinstance(v, str):
        if verb in "sv":
            s = v if prec is None else v[:prec]
        elif verb == "q":
            s = go_quote(v)
        elif verb in "xX":
            s = v.encode().hex()
            s = s.upper() if verb == "X" else s
        else:
            s = _bad(verb, v)
    elif verb in "vs":  # maps, slices and the rest
        s = sprint_value(v)
    else:
        s = _bad(verb, v)
    return _pad(s, flags, width, numeric)


def sprintf(fmt: str, args: list[object]) -> str:
    """fmt.Sprintf, with Go's in-band errors: %!d(string=x), %!d(MISSING), %!(EXTRA type=value)."""
    out: list[str] = []
    argi = 0
    i = 0
    while i < len(fmt):
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        m = _VERB_RE.match(fmt, j)
        assert m is not None
        flags, width_s, prec_s, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        i = m.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        prec: int | None = None
        if width_s == "*":
            if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                width = int(args[argi])  # type: ignore[call-overload]
                argi += 1
            else:
                out.append("%!(BADWIDTH)")
                argi += 1
        elif width_s:
            width = int(width_s)
        if prec_s is not None:
            if prec_s == "*":
                if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                    prec = int(args[argi])  # type: ignore[call-overload]
                    argi += 1
                else:
                    out.append("%!(BADPREC)")
                    argi += 1
            else:
                prec = int(prec_s) if prec_s else 0
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(verb, flags, width, prec, args[argi]))
        argi += 1
    if argi < len(args):
        extra = ", ".join(f"{go_type(a)}={sprint_value(a)}" if a is not None else "<nil>" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
