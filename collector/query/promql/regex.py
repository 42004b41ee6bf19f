"""RE2 (Go) regular expressions as Python `re` patterns, fully anchored as PromQL matchers are."""

from __future__ import annotations

import functools
import re


def _scope_inline_flags(pattern: str) -> str:
    """Go allows `(?i)` anywhere, applying to the rest of the enclosing group; Python only at the start.

    `a(?i)b` becomes `a(?i:b)`: the flag group is closed where its enclosing group ends.
    """
    out: list[str] = []
    closers: list[int] = [0]  # per open group: how many scoped-flag groups to close at its end
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < len(pattern) and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < len(pattern) and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        m = re.match(r"\(\?([a-zA-Z-]+)\)", pattern[i:])
        if m:
            out.append(f"(?{m.group(1)}:")
            closers[-1] += 1
            i += m.end()
            continue
        if c == "(":
            closers.append(0)
        elif c == ")":
            out.append(")" * closers.pop())
            if not closers:
                closers.append(0)
        elif c == "|" and closers[-1]:
            # An alternation ends the scope of the flags on this branch; Go applies them to later
            # branches too, which we approximate by reopening nothing.
            out.append(")" * closers[-1])
            closers[-1] = 0
        out.append(c)
        i += 1
    out.append(")" * sum(closers))
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def compile_go(pattern: str) -> re.Pattern[str]:
    """Compile a Go/RE2 pattern; `.` matches newlines as in Prometheus' matchers. Raises re.error."""
    return re.compile(_scope_inline_flags(pattern), re.DOTALL)
