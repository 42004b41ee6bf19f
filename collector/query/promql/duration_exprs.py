"""Duration expressions (experimental PromQL): `[5m+30s]`, `[step()*2:10s]`, `offset min_of(step(), 1s)`.

promql-parser has no grammar for them, so they are folded into plain millisecond durations in the query
text before parsing: they depend only on literals and on the query's `step()` and `range()`.
"""

from __future__ import annotations

import math
import re

from collector.query.promql.errors import bad_data
from collector.query.promql.positions import tokens

_DURATION_RE = re.compile(r"^(?:\d+(?:y|w|d|h|ms|m|s))+$")
_UNIT_S = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
Token = tuple[str, str, int]


def _literal_seconds(text: str) -> float:
    if _DURATION_RE.match(text):
        return sum(float(n) * _UNIT_S[u] for n, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", text))
    try:
        return float(int(text, 0)) if text.lower().startswith("0x") else float(text)
    except ValueError as exc:
        raise bad_data(f"parse error: bad duration {text!r}") from exc


class _Folder:
    """Recursive descent over a token slice: + - * / % ^ (right-assoc), unary signs, parentheses,
    step(), range(), min_of(a, b), max_of(a, b). Values are seconds."""

    def __init__(self, toks: list[Token], step_s: float, range_s: float) -> None:
        self.toks, self.i, self.step_s, self.range_s = toks, 0, step_s, range_s

    def peek(self) -> str:
        return self.toks[self.i][1] if self.i < len(self.toks) else ""

    def take(self) -> str:
        t = self.peek()
        self.i += 1
        return t

    def expect(self, text: str) -> None:
        if self.take() != text:
            raise bad_data(f"parse error: expected {text!r} in duration expression")

    def expr(self) -> float:
        v = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            r = self.term()
            v = v + r if op == "+" else v - r
        return v

    def term(self) -> float:
        v = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            r = self.unary()
            if op == "*":
                v *= r
            elif r == 0:
                raise bad_data("parse error: division by zero in duration expression")
            else:
                v = v / r if op == "/" else math.fmod(v, r)
        return v

    def unary(self) -> float:
        if self.peek() in ("+", "-"):
            sign = -1.0 if self.take() == "-" else 1.0
            return sign * self.unary()
        return self.power()

    def power(self) -> float:
        v = self.atom()
        if self.peek() == "^":
            self.take()
            return float(v ** self.unary())
        return v

    def atom(self) -> float:
        t = self.take()
        if t == "(":
            v = self.expr()
            self.expect(")")
            return v
        if t in ("step", "range", "min_of", "max_of"):
            self.expect("(")
            if t in ("step", "range"):
                self.expect(")")
                return self.step_s if t == "step" else self.range_s
            a = self.expr()
            self.expect(",")
            b = self.expr()
            self.expect(")")
            return min(a, b) if t == "min_of" else max(a, b)
        if not t:
            raise bad_data("parse error: unexpected end of duration expression")
        return _literal_seconds(t)


def _ms_literal(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms}ms" if ms >= 0 else f"-{-ms}ms"


def _is_plain(toks: list[Token]) -> bool:
    return len(toks) == 0 or (len(toks) == 1 and toks[0][0] == "num")


def _closing(toks: list[Token], i: int) -> int:
    depth = 0
    for j in range(i, len(toks)):
        if toks[j][1] in "([{":
            depth += 1
        elif toks[j][1] in ")]}":
            depth -= 1
            if depth == 0:
                return j
    raise bad_data("parse error: unclosed bracket")


def _offset_operand_end(toks: list[Token], i: int) -> int:
    """End (exclusive) of the operand after `offset`: signs, then one literal, (...) or call."""
    j = i
    while j < len(toks) and toks[j][1] in ("+", "-"):
        j += 1
    if j >= len(toks):
        return j
    if toks[j][1] == "(":
        j = _closing(toks, j) + 1
    elif toks[j][0] == "ident" and j + 1 < len(toks) and toks[j + 1][1] == "(":
        j = _closing(toks, j + 1) + 1
    else:
        j += 1
    # Whatever follows (`offset step()^0`, `offset 1s+8000`) applies to the offset selector's value.
    return j


def fold_duration_expressions(query: str, step_ms: int, range_ms: int) -> str:
    """The query with every duration expression replaced by its value as a `<n>ms` literal."""
    toks = tokens(query)
    if not any(t[1] in ("[", "offset") for t in toks):
        return query
    edits: list[tuple[int, int, str]] = []  # (start offset, end offset, replacement)
    step_s, range_s = step_ms / 1000.0, range_ms / 1000.0
    i = 0
    while i < len(toks):
        kind, text, _ = toks[i]
        if text == "[":
            end = _closing(toks, i)
            inner = toks[i + 1 : end]
            parts: list[list[Token]] = [[]]
            depth = 0
            for t in inner:
                if t[1] in "([{":
                    depth += 1
                elif t[1] in ")]}":
                    depth -= 1
                if t[1] == ":" and depth == 0:
                    parts.append([])
                else:
                    parts[-1].append(t)
            if not all(_is_plain(p) for p in parts):
                rendered = [
                    "" if not p else (p[0][1] if _is_plain(p) else _ms_literal(_Folder(p, step_s, range_s).expr()))
                    for p in parts
                ]
                start_off = toks[i][2] + 1
                end_off = toks[end][2]
                edits.append((start_off, end_off, ":".join(rendered)))
            i = end + 1
            continue
        if kind == "ident" and text == "offset":
            end = _offset_operand_end(toks, i + 1)
            operand = toks[i + 1 : end]
            plain = (len(operand) == 1 and operand[0][0] == "num") or (
                len(operand) == 2 and operand[0][1] == "-" and operand[1][0] == "num"
            )
            if operand and not plain:
                folder = _Folder(operand, step_s, range_s)
                value = folder.expr()
                if folder.i != len(operand):
                    raise bad_data("parse error: bad offset expression")
                last = operand[-1]
                if round(value * 1000) == 0:  # a zero offset is no offset (the parser rejects `offset 0ms`)
                    edits.append((toks[i][2], last[2] + len(last[1]), ""))
                else:
                    edits.append((operand[0][2], last[2] + len(last[1]), _ms_literal(value)))
            i = end
            continue
        i += 1
    for start, end, text in reversed(edits):
        query = query[:start] + text + query[end:]
    return query
