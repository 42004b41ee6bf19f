"""The label extractors beyond json and logfmt: `| regexp`, `| pattern`, `| unpack`, and `| decolorize`.

Each extractor returns the (name, value) pairs it found, or None when the line is not of its kind (unpack on
a line that is not a JSON object: JSONParserErr). A regexp or pattern that does not match extracts nothing
and is no error, as in Loki.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from collector.query.logql.regex import compile_go

_CAPTURE = re.compile(r"<(_|[A-Za-z_][A-Za-z0-9_]*)>")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# CSI sequences (colours, cursor moves) and OSC sequences, as terminals and colouring loggers write them.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def decolorize(line: str) -> str:
    return _ANSI.sub("", line)


class RegexpExtractor:
    """`| regexp "(?P<name>re)..."`: each named group that took part in the first match becomes a label."""

    def __init__(self, expression: str) -> None:
        self.regex = compile_go(expression)
        names = [n for n in self.regex.groupindex if n]
        if not names:
            raise ValueError("at least one named capture must be supplied")
        for name in names:
            if _LABEL_NAME.fullmatch(name) is None:
                raise ValueError(f"invalid extracted label name '{name}'")

    def __call__(self, line: str) -> list[tuple[str, str]]:
        m = self.regex.search(line)
        if m is None:
            return []
        return [(name, value) for name, value in m.groupdict().items() if value is not None]


@dataclass(frozen=True)
class _Literal:
    text: str


@dataclass(frozen=True)
class _Capture:
    name: str  # "_" for `<_>`, which matches without extracting


class PatternExtractor:
    """`| pattern "<ip> - - [<_>] \"<method> <path> ..."`: Loki's pattern matcher.

    A leading literal must start the line; each capture then takes the text up to the next occurrence of the
    literal after it; a capture with no literal after it, or whose literal is missing, takes the rest.
    """

    def __init__(self, pattern: str) -> None:
        nodes: list[_Literal | _Capture] = []
        pos = 0
        for m in _CAPTURE.finditer(pattern):
            if m.start() > pos:
                nodes.append(_Literal(pattern[pos : m.start()]))
            elif nodes and isinstance(nodes[-1], _Capture):
                raise ValueError(f"found consecutive capture '{m.group()}': a literal must separate captures")
            nodes.append(_Capture(m.group(1)))
            pos = m.end()
        if pos < len(pattern):
            nodes.append(_Literal(pattern[pos:]))
        names = [n.name for n in nodes if isinstance(n, _Capture) and n.name != "_"]
        if not names:
            raise ValueError("at least one capture is required")
        if len(set(names)) != len(names):
            raise ValueError("duplicate capture name")
        self.nodes = nodes

    def __call__(self, line: str) -> list[tuple[str, str]]:
        nodes = self.nodes
        if not line:
            return []
        if isinstance(nodes[0], _Literal):
            if not line.startswith(nodes[0].text):
                return []
            line = line[len(nodes[0].text) :]
            nodes = nodes[1:]
        out: list[tuple[str, str]] = []
        while nodes:
            capture = nodes[0]
            assert isinstance(capture, _Capture)
            if len(nodes) == 1:
                if capture.name != "_":
                    out.append((capture.name, line))
                return out
            literal = nodes[1]
            assert isinstance(literal, _Literal)
            nodes = nodes[2:]
            at = line.find(literal.text)
            if at < 0:
                if capture.name != "_":
                    out.append((capture.name, line))
                return out
            if capture.name != "_":
                out.append((capture.name, line[:at]))
            line = line[at + len(literal.text) :]
        return out


def unpack(line: str) -> tuple[list[tuple[str, str]], str | None] | None:
    """`| unpack`: the string members of a JSON object become labels; `_entry` replaces the line.

    Returns (labels, new line or None), or None when the line is not a JSON object."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    pairs: list[tuple[str, str]] = []
    entry: str | None = None
    for key, item in value.items():
        if not isinstance(item, str):
            continue  # Loki's unpack keeps string members only
        if key == "_entry":
            entry = item
        else:
            pairs.append((key, item))
    return pairs, entry
