"""Go text/template as LogQL's line_format and label_format run it: text, `{{ pipelines }}` of fields
(`.label`, missing ones are ""), literals and functions (template_functions.py), `{{if}} / {{else if}} /
{{else}} / {{end}}`, comments and the `{{-`/`-}}` trim markers; `__line__` and `__timestamp__` are functions.

Parse errors raise TemplateError (the query is refused); errors while running raise TemplateExecError (the
entry is kept and marked TemplateFormatErr). `range`, `with`, variables and `define` are not supported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collector.query.logql.template_functions import (
    CONTROL_FUNCTIONS,
    FUNCTIONS,
    GoTime,
    TemplateExecError,
    go_sprint,
    go_truth,
)

_ACTION = re.compile(r"\{\{(-[ \t\r\n])?(.*?)([ \t\r\n]-)?\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
    |(?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    |(?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
    |(?P<dot>\.)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>[()|])
    |(?P<variable>\$[A-Za-z0-9_]*)""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class TemplateError(ValueError):
    """A template Go's text/template would not parse."""


@dataclass(frozen=True)
class Field:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Dot:
    pass


@dataclass(frozen=True)
class Const:
    value: object


@dataclass(frozen=True)
class Ident:
    name: str


@dataclass
class Pipe:
    commands: list[list[Operand]]


Operand = Field | Dot | Const | Ident | Pipe


@dataclass
class Text:
    text: str


@dataclass
class If:
    branches: list[tuple[Pipe, list[Node]]] = field(default_factory=list)
    otherwise: list[Node] | None = None


Node = Text | Pipe | If


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    out: list[str] = []
    body = token[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in ("u", "x", "U"):
            size = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2 : i + 2 + size]
            if len(digits) != size or re.fullmatch(r"[0-9a-fA-F]+", digits) is None:
                raise TemplateError(f"invalid syntax: {token}")
            out.append(chr(int(digits, 16)))
            i += 2 + size
        else:
            raise TemplateError(f"invalid syntax: {token}")
    return "".join(out)


class _ActionParser:
    def __init__(self, text: str, functions: set[str]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise TemplateError(f"unexpected {text[pos]!r} in command")
            kind = m.lastgroup or ""
            if kind == "variable":
                raise TemplateError(f"variables such as {m.group()} are not supported")
            if kind != "space":
                self.tokens.append((kind, m.group()))
            pos = m.end()
        self.i = 0
        self.functions = functions

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def pipe(self) -> Pipe:
        commands: list[list[Operand]] = []
        while True:
            command: list[Operand] = []
            while self.peek()[0] not in ("end",) and self.peek()[1] not in ("|", ")"):
                command.append(self.operand())
            if not command:
                raise TemplateError("missing value for command")
            commands.append(command)
            if self.peek()[1] != "|":
                return Pipe(commands)
            self.i += 1

    def operand(self) -> Operand:
        kind, text = self.peek()
        self.i += 1
        if kind == "string":
            return Const(_unquote(text))
        if kind == "number":
            value = float(text)
            is_int = re.fullmatch(r"-?\d+", text) is not None
            return Const(int(text) if is_int else value)
        if kind == "field":
            return Field(tuple(text[1:].split(".")))
        if kind == "dot":
            return Dot()
        if text == "(":
            inner = self.pipe()
            if self.peek()[1] != ")":
                raise TemplateError("unclosed left paren")
            self.i += 1
            return inner
        if kind == "ident":
            if text in ("true", "false"):
                return Const(text == "true")
            if text == "nil":
                return Const(None)
            if text not in self.functions:
                raise TemplateError(f'function "{text}" not defined')
            return Ident(text)
        raise TemplateError(f"unexpected {text!r} in operand")


def parse_template(text: str, functions: set[str]) -> list[Node]:
    """The node tree of a template; raises TemplateError."""
    root: list[Node] = []
    stack: list[tuple[If, list[Node]]] = []  # open ifs, each with the list its branch appends to
    current = root
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(text):
        chunk = text[pos : m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m.group(1):
            chunk = chunk.rstrip()
        if chunk:
            current.append(Text(chunk))
        pos = m.end()
        trim_next = bool(m.group(3))
        body = m.group(2).strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise TemplateError("unclosed comment")
            continue
        words = body.split(None, 1)
        keyword = words[0] if words else ""
        rest = words[1] if len(words) > 1 else ""
        if keyword == "if":
            node = If()
            branch: list[Node] = []
            node.branches.append((_pipe(rest, functions), branch))
            current.append(node)
            stack.append((node, current))
            current = branch
        elif keyword == "else":
            if not stack:
                raise TemplateError("unexpected {{else}}")
            node = stack[-1][0]
            if node.otherwise is not None:
                raise TemplateError("expected end; found {{else}}")
            branch = []
            if rest.startswith("if ") or rest == "if":
                node.branches.append((_pipe(rest[2:], functions), branch))
            elif rest:
                raise TemplateError(f"unexpected {rest!r} in else")
            else:
                node.otherwise = branch
            current = branch
        elif keyword == "end":
            if not stack or rest:
                raise TemplateError("unexpected {{end}}")
            current = stack.pop()[1]
        elif keyword in ("range", "with", "define", "template", "block", "break", "continue"):
            raise TemplateError(f"{{{{{keyword}}}}} is not supported in LogQL templates here")
        else:
            current.append(_pipe(body, functions))
    tail = text[pos:]
    if trim_next:
        tail = tail.lstrip()
    if "{{" in tail:
        raise TemplateError("unclosed action")
    if tail:
        current.append(Text(tail))
    if stack:
        raise TemplateError("unexpected EOF: an {{if}} has no {{end}}")
    return root


def _pipe(text: str, functions: set[str]) -> Pipe:
    if not text.strip():
        raise TemplateError("missing value for command")
    p = _ActionParser(text, functions)
    pipe = p.pipe()
    if p.peek()[0] != "end":
        raise TemplateError(f"unexpected {p.peek()[1]!r} in command")
    return pipe


class Template:
    """A parsed line_format / label_format template; `render` runs it over one entry."""

    def __init__(self, text: str) -> None:
        self.nodes = parse_template(text, set(FUNCTIONS) | set(CONTROL_FUNCTIONS) | {"__line__", "__timestamp__"})

    def render(self, line: str, labels: dict[str, str], ts_ns: int) -> str:
        run = _Run(line, labels, ts_ns)
        out: list[str] = []
        run.walk(self.nodes, out)
        return "".join(out)


@dataclass
class _Run:
    line: str
    labels: dict[str, str]
    ts_ns: int

    def walk(self, nodes: list[Node], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Pipe):
                out.append(go_sprint(self.pipe(node)))
            else:
                for condition, branch in node.branches:
                    if go_truth(self.pipe(condition)):
                        self.walk(branch, out)
                        break
                else:
                    if node.otherwise is not None:
                        self.walk(node.otherwise, out)

    def pipe(self, pipe: Pipe) -> object:
        value: object = _NOTHING
        for command in pipe.commands:
            value = self.command(command, value)
        return value

    def command(self, command: list[Operand], final: object) -> object:
        head = command[0]
        if not isinstance(head, Ident):
            if len(command) > 1 or final is not _NOTHING:
                raise TemplateExecError(f"can't give argument to non-function {_describe(head)}")
            return self.operand(head)
        args = command[1:]
        if head.name in CONTROL_FUNCTIONS:
            lazy: list[Callable[[], object]] = [lambda a=a: self.operand(a) for a in args]  # type: ignore[misc]
            if final is not _NOTHING:
                lazy.append(lambda: final)
            if not lazy:
                raise TemplateExecError(f"wrong number of args for {head.name}: want at least 1 got 0")
            result: object = None
            for get in lazy:
                result = get()
                if go_truth(result) == (head.name == "or"):
                    return result
            return result
        values = [self.operand(a) for a in args]
        if final is not _NOTHING:
            values.append(final)
        return self.call(head.name, values)

    def call(self, name: str, values: list[object]) -> object:
        if name == "__line__":
            return self.line
        if name == "__timestamp__":
            return GoTime(self.ts_ns)
        fn: Callable[..., Any] = FUNCTIONS[name]
        try:
            return fn(*values)
        except TemplateExecError:
            raise
        except TypeError as exc:
            raise TemplateExecError(f"wrong number of args for {name}: {exc}") from None
        except (ValueError, ArithmeticError, OverflowError) as exc:
            raise TemplateExecError(f"error calling {name}: {exc}") from None

    def operand(self, node: Operand) -> object:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Field):
            if len(node.names) > 1:
                raise TemplateExecError(f"can't evaluate field {node.names[1]} in type string")
            return self.labels.get(node.names[0], "")  # missingkey=zero over map[string]string
        if isinstance(node, Dot):
            return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(self.labels.items())) + "]"
        if isinstance(node, Ident):
            return self.call(node.name, []) if node.name not in CONTROL_FUNCTIONS else self.command([node], _NOTHING)
        return self.pipe(node)


_NOTHING = object()  # no value piped in yet


def _describe(node: Operand) -> str:
    if isinstance(node, Const):
        return repr(node.value)
    return type(node).__name__
