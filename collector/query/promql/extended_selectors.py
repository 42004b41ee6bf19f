"""Extended range selectors (experimental PromQL): `x[1m] anchored`, `x[1m] smoothed`, `x smoothed`.

promql-parser does not know the keywords, so before parsing each is moved into its selector as a
pseudo matcher on MODE_LABEL, which the engine reads back (and never sends to the store).
"""

from __future__ import annotations

from collector.query.promql.errors import bad_data
from collector.query.promql.positions import tokens

MODE_LABEL = "__promql_range_mode__"
PAD_LABEL = "__promql_pad__"
MODES = ("anchored", "smoothed")
Token = tuple[str, str, int]


def _opening(toks: list[Token], j: int) -> int:
    """Index of the bracket opening the one closed at toks[j]."""
    depth = 0
    for k in range(j, -1, -1):
        t = toks[k][1]
        if t in ")]}":
            depth += 1
        elif t in "([{":
            depth -= 1
            if depth == 0:
                return k
    raise bad_data("parse error: unbalanced brackets")


def _selector_end(toks: list[Token], j: int) -> int:
    """Walk back from the token before the keyword over `[range]`, `offset d` and `@ t` to the selector's
    last token (its `}` or its bare name)."""
    while j >= 0:
        kind, text, _ = toks[j]
        if text == "]":
            j = _opening(toks, j) - 1
            continue
        if text == ")":  # `@ start()` or `offset (expr)`
            j = _opening(toks, j) - 1
            if j >= 0 and toks[j][0] == "ident" and toks[j][1] in ("start", "end"):
                j -= 1
            continue
        if kind == "num" or text in ("-", "+", "@", "offset"):
            j -= 1
            continue
        return j
    raise bad_data("parse error: no selector before range modifier")


def pad_info_selectors(query: str) -> str:
    """info()'s second argument may match the empty label set (`{non_existent=~".*"}`), which promql-parser
    rejects: a pseudo matcher on PAD_LABEL, which the engine drops again, makes it acceptable."""
    toks = tokens(query)
    edits: list[int] = []
    for i, (kind, text, _) in enumerate(toks):
        if kind != "ident" or text != "info" or i + 1 >= len(toks) or toks[i + 1][1] != "(":
            continue
        depth = 0
        for j in range(i + 1, len(toks)):
            t = toks[j][1]
            if t in "([{":
                depth += 1
            elif t in ")]}":
                depth -= 1
                if depth == 0:
                    break
            elif t == "," and depth == 1 and j + 1 < len(toks) and toks[j + 1][1] == "{":
                edits.append(toks[j + 1][2] + 1)
    for offset in reversed(edits):
        query = query[:offset] + f'{PAD_LABEL}="1", ' + query[offset:]
    return query.replace(f'{PAD_LABEL}="1", }}', f'{PAD_LABEL}="1"}}')


def mark_extended_selectors(query: str) -> str:
    """The query with every `anchored`/`smoothed` keyword moved into its selector as a pseudo matcher."""
    toks = tokens(query)
    edits: list[tuple[int, int, str]] = []
    for i, (kind, text, offset) in enumerate(toks):
        if kind != "ident" or text not in MODES or i == 0:
            continue
        # A keyword that starts a selector or call (`anchored{...}`, `smoothed(`) is a metric name.
        if i + 1 < len(toks) and toks[i + 1][1] in ("{", "(", "["):
            continue
        prev = toks[i - 1][1]
        if prev in ("(", ",", "by", "without") or prev in "+-*/%^=<>!":
            continue
        end = _selector_end(toks, i - 1)
        matcher = f'{MODE_LABEL}="{text}"'
        if toks[end][1] == "}":
            open_brace = _opening(toks, end)
            inner_empty = open_brace == end - 1
            edits.append((toks[end][2], toks[end][2], matcher if inner_empty else f", {matcher}"))
        elif toks[end][0] == "ident":
            name_end = toks[end][2] + len(toks[end][1])
            edits.append((name_end, name_end, "{" + matcher + "}"))
        else:
            raise bad_data(f"parse error: unexpected {text!r}")
        edits.append((offset, offset + len(text), ""))
    for start, stop, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        query = query[:start] + text + query[stop:]
    return query
