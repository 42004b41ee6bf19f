"""Go (RE2) regular expression syntax -> Python `re`: the differences LogQL users run into.

Go accepts flag groups such as `(?i)` anywhere, applying to the rest of the enclosing group; Python 3.11
accepts them only at the very start. Go also spells named groups `(?P<name>...)` or `(?<name>...)` and
ends text with `\\z`. Everything else LogQL users write means the same in both.
"""

from __future__ import annotations

import re
from functools import lru_cache

_FLAG_GROUP = re.compile(r"\(\?([imsU-]+)\)")


def _translate(pattern: str) -> str:
    out: list[str] = []
    # Per open group (the pattern itself at the bottom): the flags set inside it so far, each a `(?f:` to close.
    scopes: list[list[str]] = [[]]
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append("\\Z" if pattern[i + 1] == "z" and not in_class else pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if pattern[i : i + 1] == "^":
                out.append("^")
                i += 1
            if pattern[i : i + 1] == "]":  # a leading ] is a literal in both syntaxes
                out.append("]")
                i += 1
            continue
        flags = _FLAG_GROUP.match(pattern, i)
        if flags is not None:
            # `(?i)rest` -> `(?i:rest)`, closed where the enclosing group (or the pattern) ends.
            if "U" in flags.group(1):
                raise re.error("the U (ungreedy) flag has no Python equivalent")
            out.append(f"(?{flags.group(1)}:")
            scopes[-1].append(flags.group(1))
            i = flags.end()
            continue
        if pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            scopes.append([])
            continue
        if ch == "(":
            scopes.append([])
        elif ch == ")" and len(scopes) > 1:
            out.append(")" * len(scopes.pop()))
        elif ch == "|" and scopes[-1]:
            # Go keeps the flags for the next alternatives of the group: close the scopes and reopen them.
            out.append(")" * len(scopes[-1]) + "|" + "".join(f"(?{f}:" for f in scopes[-1]))
            i += 1
            continue
        out.append(ch)
        i += 1
    out.append(")" * len(scopes[0]))
    return "".join(out)


@lru_cache(maxsize=512)
def compile_go(pattern: str) -> re.Pattern[str]:
    """The Python regex meaning what `pattern` means to Go; raises re.error when it cannot."""
    try:
        return re.compile(pattern)
    except re.error:
        return re.compile(_translate(pattern))


def expand_go(replacement: str, m: re.Match[str]) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name} (the longest name; an unknown one is empty), $$ is $."""
    out: list[str] = []
    i = 0
    while i < len(replacement):
        if replacement[i] != "$":
            out.append(replacement[i])
            i += 1
            continue
        if replacement.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        braced = replacement.startswith("${", i)
        j = i + (2 if braced else 1)
        k = j
        while k < len(replacement) and (replacement[k].isalnum() or replacement[k] == "_"):
            k += 1
        name = replacement[j:k]
        if not name or (braced and replacement[k : k + 1] != "}"):
            out.append("$")  # malformed: Go keeps the $ as text
            i += 1
            continue
        out.append(_group(m, name))
        i = k + (1 if braced else 0)
    return "".join(out)


def _group(m: re.Match[str], name: str) -> str:
    try:
        value = m.group(int(name)) if name.isdigit() else m.group(name)
    except (IndexError, re.error):
        return ""
    return value or ""
