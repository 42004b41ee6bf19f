"""Alertmanager label matchers (`=`, `!=`, `=~`, `!~`; regexes anchored) parsed from their text form."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"', "t": "\t"}


class MatcherError(ValueError):
    """A matcher string is malformed; the message names what is wrong and the character offset."""


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True)
class Matcher:
    """One matcher. A label that is absent matches as the empty string, as in Alertmanager."""

    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in (MatchOp.RE, MatchOp.NRE) and self._regex is None:
            try:
                # Anchored like Alertmanager (^(?:re)$); fullmatch is the same thing.
                object.__setattr__(self, "_regex", re.compile(self.value))
            except re.error as e:
                raise MatcherError(f"invalid regex {self.value!r} for label {self.name!r}: {e}") from e

    @property
    def is_regex(self) -> bool:
        return self.op in (MatchOp.RE, MatchOp.NRE)

    @property
    def is_equal(self) -> bool:
        return self.op in (MatchOp.EQ, MatchOp.RE)

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return value == self.value
        if self.op is MatchOp.NE:
            return value != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(value) is not None
        return hit if self.op is MatchOp.RE else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op.value}"{escaped}"'


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def matchers_string(matchers: Sequence[Matcher]) -> str:
    """`{a="b",c=~"d"}`: Alertmanager's Matchers.String(), used in route and group keys."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse `a="b"`, `a=b`, or `{a="b", c=~"x.*"}` (a trailing comma is allowed) into matchers."""
    p = _Parser(text)
    p.skip_space()
    braced = p.peek() == "{"
    if braced:
        p.pos += 1
    out: list[Matcher] = []
    while True:
        p.skip_space()
        if p.at_end() or (braced and p.peek() == "}"):
            break
        out.append(p.matcher(braced))
        p.skip_space()
        if p.peek() == ",":
            p.pos += 1
            continue
        break
    p.skip_space()
    if braced:
        if p.peek() != "}":
            raise MatcherError(f"expected '}}' at offset {p.pos} in {text!r}")
        p.pos += 1
        p.skip_space()
    if not p.at_end():
        raise MatcherError(f"unexpected {p.peek()!r} at offset {p.pos} in {text!r}")
    if not out and not braced:
        raise MatcherError(f"no matcher in {text!r}")
    return tuple(out)


def parse_matcher(text: str) -> Matcher:
    """Exactly one matcher, e.g. `service="orders"`."""
    ms = parse_matchers(text)
    if len(ms) != 1:
        raise MatcherError(f"expected exactly one matcher in {text!r}, found {len(ms)}")
    return ms[0]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def matcher(self, braced: bool) -> Matcher:
        m = _NAME.match(self.text, self.pos)
        if m is None:
            raise MatcherError(f"expected a label name at offset {self.pos} in {self.text!r}")
        name = m.group(0)
        self.pos = m.end()
        self.skip_space()
        op = None
        for candidate in ("=~", "!~", "!=", "="):
            if self.text.startswith(candidate, self.pos):
                op = MatchOp(candidate)
                break
        if op is None:
            raise MatcherError(f"expected one of = != =~ !~ after {name!r} at offset {self.pos} in {self.text!r}")
        self.pos += len(op.value)
        self.skip_space()
        value = self.quoted() if self.peek() == '"' else self.bare(braced)
        return Matcher(name, op, value)

    def quoted(self) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\":
                nxt = self.text[self.pos + 1 : self.pos + 2]
                if nxt not in _ESCAPES:
                    raise MatcherError(f"invalid escape '\\{nxt}' at offset {self.pos} in {self.text!r}")
                out.append(_ESCAPES[nxt])
                self.pos += 2
                continue
            if c == '"':
                self.pos += 1
                return "".join(out)
            out.append(c)
            self.pos += 1
        raise MatcherError(f"unterminated quoted value starting at offset {start} in {self.text!r}")

    def bare(self, braced: bool) -> str:
        # Unquoted values run to the next comma (or closing brace); surrounding space is trimmed.
        stops = ",}" if braced else ","
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            if self.text[self.pos] == '"':
                raise MatcherError(f"unexpected '\"' inside an unquoted value at offset {self.pos} in {self.text!r}")
            self.pos += 1
        return self.text[start : self.pos].strip()
