"""Prometheus alert templating: expand label and annotation templates (`{{ $labels.service }}`) as Prometheus 2.42.

A template runs as Go text/template with Option("missingkey=zero") over the data Prometheus gives alert
templates (`.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`), after the prelude Prometheus prepends:
`{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}`.
A missing label is "" (the zero value of map[string]string, not Go's `<no value>`). As Prometheus does, a
template that fails while executing expands to `<error expanding template: ...>`, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from alerting.goformat import go_type, sprint_value
from alerting.model import QueryFunc
from alerting.template_functions import FUNCTION_NAMES, ExecError, Func, QuerySample, function_table, go_truth
from alerting.template_syntax import (
    Action,
    Branch,
    Chain,
    Command,
    Dot,
    Field,
    Identifier,
    ListNode,
    Literal,
    LoopControl,
    Node,
    Parser,
    Pipeline,
    TemplateCall,
    TemplateError,
    Text,
    Variable,
)

__all__ = ["AlertData", "ParsedTemplate", "TemplateError", "check", "parse", "render"]

# Go allows 100000 nested {{template}} calls; Python's stack allows fewer, and no alert template needs many.
MAX_TEMPLATE_DEPTH = 100
PRELUDE_VARIABLES = ("$labels", "$externalLabels", "$externalURL", "$value")
# What Prometheus prepends to every alert template: Go's error positions count it.
PRELUDE = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)


@dataclass
class AlertData:
    """The Go struct Prometheus passes as dot (template.AlertTemplateData)."""

    Labels: dict[str, str]
    ExternalLabels: dict[str, str]
    ExternalURL: str
    Value: float

    def go_string(self) -> str:
        return "{" + " ".join(sprint_value(getattr(self, f)) for f in _DATA_FIELDS) + "}"


_DATA_FIELDS = ("Labels", "ExternalLabels", "ExternalURL", "Value")
_DATA_TYPE = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"


@dataclass(frozen=True)
class ParsedTemplate:
    text: str
    root: ListNode
    defines: Mapping[str, ListNode]


@lru_cache(maxsize=4096)
def parse(text: str) -> ParsedTemplate:
    """Parse a label or annotation template; TemplateError (with line:col in `text`) when Go would refuse it."""
    parser = Parser(text, FUNCTION_NAMES)
    parser.vars.extend(PRELUDE_VARIABLES)
    root = parser.parse()
    return ParsedTemplate(text, root, dict(parser.defines))


def check(text: str) -> None:
    """Raise TemplateError when `text` does not parse as Prometheus would parse it (promtool check rules)."""
    try:
        parse(text)
    except RecursionError:
        raise TemplateError("template nested too deeply") from None


def render(
    text: str,
    labels: Mapping[str, str],
    value: float,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    *,
    query: QueryFunc | None = None,
    at: float = 0.0,
    alert_name: str = "",
) -> str:
    """Expand one template for one alert: `labels` are the alert's sample labels (Prometheus passes the
    query result's labels, before the rule's labels and alertname are added), `value` its sample value.

    `query` (with evaluation time `at`, Unix seconds) serves the `query` template function; without it a
    template that calls `query` expands to an error. Never raises: failures come back as Prometheus'
    `<error expanding template: ...>` text, worded as Prometheus words it for the rule `alert_name`.
    """
    name = "__alert_" + alert_name
    try:
        tmpl = parse(text)
    except RecursionError:
        return f"<error expanding template: error parsing template {name}: template: {name}: nested too deeply>"
    except TemplateError as e:
        line, _ = _full_position(text, e.pos)
        return f"<error expanding template: error parsing template {name}: template: {name}:{line}: {e.reason}>"
    data = AlertData(dict(labels), dict(external_labels or {}), external_url, float(value))
    try:
        return Executor(tmpl, function_table(query, at, external_url), name).run(data)
    except TemplateError as e:
        return f"<error expanding template: error executing template {name}: {e.reason}>"
    except RecursionError:
        return f"<error expanding template: error executing template {name}: template: {name}: nested too deeply>"


def _full_position(text: str, pos: int) -> tuple[int, int]:
    """Go's (line, byte column) of offset `pos` of `text` in the prelude-prefixed template: the column is
    0-based on the first line (as Go's ErrorContext counts it) and counts from the line start after."""
    full = PRELUDE + text
    at = len(PRELUDE) + pos
    last_nl = full.rfind("\n", 0, at)
    line = full.count("\n", 0, at) + 1
    return line, at if last_nl < 0 else at - (last_nl + 1)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    def __init__(self, tmpl: ParsedTemplate, funcs: Mapping[str, Func], name: str) -> None:
        self.tmpl = tmpl
        self.name = name
        self.funcs = funcs
        self.out: list[str] = []
        self.vars: list[tuple[str, object]] = []
        self.depth = 0

    def error(self, node: Node, message: str) -> TemplateError:
        """Go's exec error: `template: NAME:LINE:COL: executing "NAME" at <NODE>: MESSAGE`."""
        line, col = _full_position(self.tmpl.text, node.pos)
        return TemplateError(
            f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{node_string(node)}>: {message}'
        )

    def run(self, data: AlertData) -> str:
        self.vars = [("$", data)]
        for name, field in zip(PRELUDE_VARIABLES, _DATA_FIELDS, strict=True):
            self.vars.append((name, getattr(data, field)))
        self.walk(data, self.tmpl.root)
        return "".join(self.out)

    # --- statements -------------------------------------------------------------------------------------

    def walk(self, dot: object, node: Node) -> None:
        if isinstance(node, Text):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, Action):
            value = self.pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.out.append(_printable(value))
        elif isinstance(node, Branch):
            mark = len(self.vars)
            try:
                if node.kind == "range":
                    self.walk_range(dot, node)
                else:
                    value = self.pipeline(dot, node.pipe)
                    if go_truth(value):
                        self.walk(value if node.kind == "with" else dot, node.body)
                    elif node.else_body is not None:
                        self.walk(dot, node.else_body)
            finally:
                del self.vars[mark:]
        elif isinstance(node, LoopControl):
            raise _Break() if node.kind == "break" else _Continue()
        elif isinstance(node, TemplateCall):
            body = self.tmpl.defines.get(node.name)
            if body is None:
                raise self.error(node, f'template: no template "{node.name}" associated with template')
            new_dot = self.pipeline(dot, node.pipe) if node.pipe is not None else None
            self.depth += 1
            if self.depth > MAX_TEMPLATE_DEPTH:
                raise self.error(node, f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")
            saved = self.vars
            self.vars = [("$", new_dot)]
            try:
                self.walk(new_dot, body)
            finally:
                self.vars = saved
                self.depth -= 1
        else:
            raise self.error(node, f"unknown node {type(node).__name__}")

    def walk_range(self, dot: object, node: Branch) -> None:
        value = self.pipeline(dot, node.pipe, declare=False)
        items: list[tuple[object, object]]
        if isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif value is None:
            items = []
        else:
            raise self.error(node, f"range can't iterate over {sprint_value(value)}")
        if not items:
            if node.else_body is not None:
                self.walk(dot, node.else_body)
            return
        mark = len(self.vars)
        for key, elem in items:
            decl = node.pipe.decl
            if len(decl) == 1:
                self.set_var(decl[0], elem, node.pipe.is_assign)
            elif len(decl) == 2:
                self.set_var(decl[0], key, node.pipe.is_assign)
                self.set_var(decl[1], elem, node.pipe.is_assign)
            try:
                self.walk(elem, node.body)
            except _Break:
                break
            except _Continue:
                pass
            finally:
                del self.vars[mark:]

    def set_var(self, name: str, value: object, assign: bool, node: Node | None = None) -> None:
        if assign:
            for i in range(len(self.vars) - 1, -1, -1):
                if self.vars[i][0] == name:
                    self.vars[i] = (name, value)
                    return
            if node is not None:
                raise self.error(node, f"undefined variable: {name}")
        self.vars.append((name, value))

    # --- expressions ------------------------------------------------------------------------------------

    def pipeline(self, dot: object, pipe: Pipeline, declare: bool = True) -> object:
        value: object = _MISSING
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        if declare:
            for name in pipe.decl:
                self.set_var(name, value, pipe.is_assign, pipe.cmds[-1])  # Go reports the last command
        return value

    def command(self, dot: object, cmd: Command, final: object) -> object:
        first = cmd.args[0]
        if isinstance(first, Identifier):
            return self.call(dot, first, cmd.args[1:], final, cmd)
        if isinstance(first, Literal) and first.text == "nil":
            raise self.error(first, "nil is not a command")
        if len(cmd.args) > 1 or final is not _MISSING:
            if isinstance(first, Field | Variable | Chain) and (
                (isinstance(first, Field | Chain) and first.names) or (isinstance(first, Variable) and first.names)
            ):
                raise self.error(first, f"{node_string(first)} has arguments but cannot be invoked as function")
            raise self.error(first, f"can't give argument to non-function {node_string(first)}")
        return self.operand(dot, first)

    def operand(self, dot: object, node: Node) -> object:
        if isinstance(node, Field):
            return self.fields(node, dot, node.names)
        if isinstance(node, Variable):
            return self.fields(node, self.variable(node), node.names)
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Chain):
            base = self.pipeline(dot, node.node) if isinstance(node.node, Pipeline) else self.operand(dot, node.node)
            return self.fields(node, base, node.names)
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Identifier):
            return self.call(dot, node, [], _MISSING, Command(node.pos, [node]))
        raise self.error(node, "can't evaluate")

    def variable(self, node: Variable) -> object:
        for name, value in reversed(self.vars):
            if name == node.name:
                return value
        raise self.error(node, f"undefined variable: {node.name}")

    def fields(self, node: Node, value: object, names: tuple[str, ...]) -> object:
        for name in names:
            if isinstance(value, dict):
                # missingkey=zero on map[string]string: the zero value, ""
                value = value.get(name, "" if all(isinstance(v, str) for v in value.values()) else None)
            elif isinstance(value, AlertData):
                if name not in _DATA_FIELDS:
                    raise self.error(node, f"can't evaluate field {name} in type {_DATA_TYPE}")
                value = getattr(value, name)
            elif isinstance(value, QuerySample):
                if name not in ("Labels", "Value"):
                    raise self.error(node, f"can't evaluate field {name} in type *template.sample")
                value = getattr(value, name)
            elif value is None:
                raise self.error(node, f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self.error(node, f"can't evaluate field {name} in type {go_type(value)}")
        return value

    def call(self, dot: object, ident: Identifier, arg_nodes: list[Node], final: object, cmd: Command) -> object:
        fn = self.funcs[ident.name]
        params = fn.params
        variadic = bool(params) and params[-1].endswith("...")
        fixed = params[:-1] if variadic else params
        n_args = len(arg_nodes) + (0 if final is _MISSING else 1)
        if (variadic and n_args < len(fixed)) or (not variadic and n_args != len(fixed)):
            want = f"at least {len(fixed)}" if variadic else str(len(fixed))
            raise self.error(cmd, f"wrong number of args for {ident.name}: want {want} got {n_args}")
        if fn.lazy:  # and/or stop at the first argument that decides
            nodes: list[Node | None] = [*arg_nodes, *([None] if final is not _MISSING else [])]
            value: object = None
            for n in nodes:
                value = final if n is None else self.arg(dot, n, "any", ident.name)
                if go_truth(value) == (ident.name == "or"):
                    return value
            return value
        values: list[object] = []
        for i, n in enumerate(arg_nodes):
            kind = fixed[i] if i < len(fixed) else params[-1][:-3]
            values.append(self.arg(dot, n, kind, ident.name))
        if final is not _MISSING:
            kind = fixed[len(values)] if len(values) < len(fixed) else params[-1][:-3]
            values.append(self.check_type(ident, final, kind))
        try:
            return fn.impl(*values)
        except ExecError as e:
            raise self.error(cmd, f"error calling {ident.name}: {e}") from None

    def arg(self, dot: object, node: Node, kind: str, fname: str) -> object:
        if isinstance(node, Literal):
            if kind == "string" and not isinstance(node.value, str):
                raise self.error(node, f"expected string; found {node.text}")
            if kind == "float64" and not node.is_number:
                raise self.error(node, f"expected float64; found {node.text}")
            if kind in ("sample", "samples") and node.value is not None:
                raise self.error(node, f"expected pointer; found {node.text}")
            return float(node.value) if kind == "float64" else node.value  # type: ignore[arg-type]
        return self.check_type(node, self.operand(dot, node), kind)

    def check_type(self, node: Node, value: object, kind: str) -> object:
        ok = {
            "any": lambda v: True,
            "string": lambda v: isinstance(v, str),
            "float64": lambda v: isinstance(v, float),
            "sample": lambda v: isinstance(v, QuerySample),
            "samples": lambda v: isinstance(v, list) and all(isinstance(x, QuerySample) for x in v),
        }[kind](value)
        if not ok:
            if value is None:
                raise self.error(node, f"invalid value; expected {kind}")
            raise self.error(node, f"wrong type for value; expected {kind}; got {go_type(value)}")
        return value


class _Missing:
    pass


_MISSING: object = _Missing()


def _printable(value: object) -> str:
    """What text/template prints for a value: an invalid (missing) value is `<no value>`."""
    if value is None or value is _MISSING:
        return "<no value>"
    return sprint_value(value)


def node_string(node: Node) -> str:
    """Go's parse.Node String(), which its error messages quote."""
    if isinstance(node, Field):
        return "." + ".".join(node.names)
    if isinstance(node, Variable):
        return node.name + "".join("." + n for n in node.names)
    if isinstance(node, Literal):
        return node.text
    if isinstance(node, Dot):
        return "."
    if isinstance(node, Identifier):
        return node.name
    if isinstance(node, Command):
        return " ".join(f"({node_string(a)})" if isinstance(a, Pipeline) else node_string(a) for a in node.args)
    if isinstance(node, Pipeline):
        decl = ""
        if node.decl:
            decl = ", ".join(node.decl) + (" = " if node.is_assign else " := ")
        return decl + " | ".join(node_string(c) for c in node.cmds)
    if isinstance(node, Chain):
        base = f"({node_string(node.node)})" if isinstance(node.node, Pipeline) else node_string(node.node)
        return base + "".join("." + n for n in node.names)
    return ""
