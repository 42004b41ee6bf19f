"""Source positions for annotations: Prometheus ends each warning with `(line:column)` of the
sub-expression it is about. promql-parser keeps no positions, so calls are found in the query text."""

from __future__ import annotations

import re

_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>\#[^\n]*)|(?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)"""
    r"""|(?P<ident>(?:[a-zA-Z_]|:(?![0-9]))[a-zA-Z0-9_:]*)|(?P<num>[0-9.][0-9a-zA-Z_.]*)|(?P<punct>.)""",
    re.DOTALL,
)


def tokens(query: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset) of every token but white space and comments."""
    out = []
    for m in _TOKEN_RE.finditer(query):
        kind = m.lastgroup or "punct"
        if kind not in ("ws", "comment"):
            out.append((kind, m.group(), m.start()))
    return out


def _closing(toks: list[tuple[str, str, int]], i: int) -> int:
    """Index of the token closing the bracket at toks[i]."""
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j][1]
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def call_offsets(query: str, name: str) -> tuple[int, list[int]] | None:
    """(offset of the call, offsets of its arguments) for the first call of function or aggregation `name`."""
    toks = tokens(query)
    for i, (kind, text, offset) in enumerate(toks):
        if kind != "ident" or text != name:
            continue
        j = i + 1
        if j < len(toks) and toks[j][1] in ("by", "without"):
            j = _closing(toks, j + 1) + 1
        if j >= len(toks) or toks[j][1] != "(":
            continue
        end = _closing(toks, j)
        args: list[int] = []
        depth = 0
        expect_arg = True
        for k in range(j + 1, end):
            t = toks[k][1]
            if expect_arg and depth == 0:
                args.append(toks[k][2])
                expect_arg = False
            if t in "([{":
                depth += 1
            elif t in ")]}":
                depth -= 1
            elif t == "," and depth == 0:
                expect_arg = True
        return offset, args
    return None


def render(query: str, offset: int) -> str:
    """` (line:column)`, both 1-based, as Prometheus appends to annotations."""
    line = query.count("\n", 0, offset) + 1
    column = offset - (query.rfind("\n", 0, offset) + 1) + 1
    return f" ({line}:{column})"


def position(query: str, name: str, arg: int | None = None) -> str:
    """The rendered position of call `name` (arg None) or of its argument `arg`; "" if not found."""
    found = call_offsets(query, name)
    if found is None:
        return ""
    call, args = found
    if arg is None:
        return render(query, call)
    return render(query, args[arg]) if arg < len(args) else ""
