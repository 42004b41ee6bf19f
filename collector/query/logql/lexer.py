"""LogQL tokens: strings (Go double-quoted or raw backquoted), durations, byte sizes, numbers, names, operators."""

from __future__ import annotations

import re
from dataclasses import dataclass

from collector.query.logql.ast import ParseError

_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000,
    "y": 365 * 86_400_000_000_000,
}
_BYTE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15}
_BYTE_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50})

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
    |(?P<bytes>\d+(?:\.\d+)?(?i:[kmgtp]i?b|b)(?![A-Za-z0-9_]))
    |(?P<duration>(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+(?![A-Za-z0-9_]))
    |(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>\|=|\|~|!=|!~|=~|==|>=|<=|[=<>|{}()\[\],+\-*/%^])""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


@dataclass(frozen=True)
class Token:
    kind: str  # string, bytes, duration, number, name, op, end
    text: str
    pos: int

    @property
    def value(self) -> str:
        """A string token's content, unquoted; any other token's text."""
        if self.kind != "string":
            return self.text
        if self.text.startswith("`"):
            return self.text[1:-1]
        return _unquote(self.text[1:-1])


def _unquote(body: str) -> str:
    # Go's strconv.Unquote, except that an unknown escape such as `\d` is kept as written rather than
    # refused: users write regexes in double quotes and Loki's own error for that is unhelpful.
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 4
            else:
                out.append(ch + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(f"syntax error: unexpected {text[pos]!r}", pos)
        kind = m.lastgroup or "op"
        if kind != "space":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def duration_ns(text: str) -> int:
    """`1h30m`, `500ms`, `1.5s` -> nanoseconds."""
    total = 0.0
    pos = 0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS_NS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {text!r}")
    return int(total)


def bytes_value(text: str) -> float:
    """`20MB`, `1KiB`, `10b` -> bytes (SI units are powers of ten, IEC units powers of two)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]+)", text.strip())
    if m is None or m.group(2).lower() not in _BYTE_UNITS:
        raise ValueError(f"not a byte size: {text!r}")
    return float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()]
