"""Go text/template syntax (the subset Prometheus alert templates use): parsing tokens into a tree.

The tree is checked at parse time as Go 1.19 checks it: functions must be known, variables declared before
use (scoped to the enclosing if/with/range), and `else`/`end` must match. Positions are 1-based line and
column in the template text as written (Prometheus' error messages count the prelude it prepends; ours
point at the user's text).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from alerting.template_lexer import TemplateError, Token, lex, line_col, parse_number, unquote

__all__ = ["Parser", "TemplateError", "line_col", "unquote"]


# --- tree -----------------------------------------------------------------------------------------------


@dataclass
class Node:
    pos: int  # offset in the text, for error messages


@dataclass
class Text(Node):
    text: str


@dataclass
class Field(Node):  # .A.B (on dot)
    names: tuple[str, ...]


@dataclass
class Variable(Node):  # $x.A.B
    name: str
    names: tuple[str, ...]


@dataclass
class Dot(Node):
    pass


@dataclass
class Identifier(Node):  # a function name
    name: str


@dataclass
class Literal(Node):  # string, number, bool or nil; `value` is the Go value (int, float, str, bool, None)
    value: object
    is_number: bool = False
    text: str = ""


@dataclass
class Chain(Node):  # (pipeline).A.B
    node: Node
    names: tuple[str, ...]


@dataclass
class Command(Node):
    args: list[Node]


@dataclass
class Pipeline(Node):
    decl: list[str]
    is_assign: bool  # `=` rather than `:=`
    cmds: list[Command]


@dataclass
class Action(Node):
    pipe: Pipeline


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass
class Branch(Node):  # if, with, range
    kind: str
    pipe: Pipeline
    body: ListNode
    else_body: ListNode | None


@dataclass
class LoopControl(Node):  # break or continue
    kind: str


@dataclass
class TemplateCall(Node):  # {{template "name" pipeline}}
    name: str
    pipe: Pipeline | None


class Parser:
    """Parses one template. `functions` are the names defined; unknown ones are errors (as in Go)."""

    def __init__(self, text: str, functions: Container[str]) -> None:
        self.text = text
        self.functions = functions
        self.toks = lex(text)
        self.i = 0
        self.vars: list[str] = ["$"]
        self.defines: dict[str, ListNode] = {}
        self.loop_depth = 0

    def error(self, message: str, pos: int) -> TemplateError:
        return TemplateError(message, *line_col(self.text, pos), pos=pos)

    def peek(self, skip_space: bool = True) -> Token:
        j = self.i
        while skip_space and self.toks[j].kind == "space":
            j += 1
        return self.toks[j]

    def next(self, skip_space: bool = True) -> Token:
        while skip_space and self.toks[self.i].kind == "space":
            self.i += 1
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def parse(self) -> ListNode:
        return self.item_list(top=True)[0]

    def item_list(self, top: bool = False) -> tuple[ListNode, str]:
        """Items until eof (top) or an {{end}}/{{else}}; returns the list and which ended it."""
        out = ListNode(self.toks[self.i].pos)
        while True:
            tok = self.next(skip_space=False)
            if tok.kind == "eof":
                if top:
                    return out, "eof"
                raise self.error("unexpected EOF", tok.pos)
            if tok.kind == "text":
                out.nodes.append(Text(tok.pos, tok.val))
                continue
            # tok is {{
            key = self.peek()
            if key.kind == "keyword" and key.val in ("end", "else"):
                if top:
                    raise self.error(f"unexpected {{{{{key.val}}}}}", key.pos)
                self.next()
                if key.val == "end":
                    self.expect_right()
                return out, key.val
            out.nodes.append(self.action(tok))

    def expect_right(self) -> None:
        tok = self.next()
        if tok.kind != "right":
            raise self.error(f"unexpected {tok.val!r} in end of action", tok.pos)

    def action(self, left: Token) -> Node:
        key = self.peek()
        if key.kind == "keyword" and key.val != "nil":  # `{{ nil }}` parses; executing it fails
            self.next()
            if key.val in ("if", "with", "range"):
                return self.branch(key)
            if key.val in ("break", "continue"):
                if self.loop_depth == 0:
                    raise self.error(f"{{{{{key.val}}}}} outside {{{{range}}}}", key.pos)
                self.expect_right()
                return LoopControl(key.pos, key.val)
            if key.val in ("template", "block", "define"):
                return self.template_like(key)
            raise self.error(f"unexpected {key.val}", key.pos)
        pipe = self.pipeline("command", allow_decl=True)
        return Action(left.pos, pipe)

    def template_like(self, key: Token) -> Node:
        name_tok = self.next()
        if name_tok.kind not in ("string", "raw"):
            raise self.error(f"unexpected {name_tok.val!r} in {key.val} clause", name_tok.pos)
        name = unquote(name_tok.val)
        if key.val == "define":
            self.expect_right()
            saved, self.vars = self.vars, ["$"]
            body, end = self.item_list()
            self.vars = saved
            if end != "end":
                raise self.error("unexpected {{else}} in define", name_tok.pos)
            self.defines[name] = body
            return Text(key.pos, "")
        pipe = None
        if self.peek().kind != "right":
            pipe = self.pipeline(key.val, allow_decl=False)
        else:
            self.next()
        if key.val == "block":
            saved, self.vars = self.vars, ["$"]
            body, end = self.item_list()
            self.vars = saved
            if end != "end":
                raise self.error("unexpected {{else}} in block", name_tok.pos)
            self.defines[name] = body
        return TemplateCall(key.pos, name, pipe)

    def branch(self, key: Token) -> Node:
        depth = len(self.vars)
        pipe = self.pipeline(key.val, allow_decl=True)
        if key.val == "range":
            self.loop_depth += 1
        body, end = self.item_list()
        if key.val == "range":
            self.loop_depth -= 1
        else_body = None
        if end == "else":
            nxt = self.peek()
            # {{else if ...}} is {{else}}{{if ...}}...{{end}} sharing the outer {{end}} (Go 1.19 has no
            # {{else with}}, which promtool 2.42 refuses)
            if nxt.kind == "keyword" and nxt.val == "if" and key.val == "if":
                self.next()
                inner = self.branch(nxt)
                else_body = ListNode(nxt.pos, [inner])
            else:
                self.expect_right()
                else_body, end2 = self.item_list()
                if end2 != "end":
                    raise self.error("expected end; found {{else}}", self.toks[self.i - 1].pos)
        # as Go: what the pipeline, the body and the else declared goes out of scope at {{end}}
        del self.vars[depth:]
        return Branch(key.pos, key.val, pipe, body, else_body)

    def pipeline(self, context: str, allow_decl: bool) -> Pipeline:
        start = self.peek()
        decl: list[str] = []
        is_assign = False
        if allow_decl and start.kind == "var":
            # look ahead for `$x :=`, `$x =` or `$i, $x :=` (range only)
            save = self.i
            self.next()
            nxt = self.peek()
            if nxt.kind in ("declare", "assign"):
                self.next()
                decl = [start.val]
                is_assign = nxt.kind == "assign"
            elif nxt.kind == "comma" and context == "range":
                self.next()
                second = self.next()
                op = self.next()
                if second.kind != "var" or op.kind not in ("declare", "assign"):
                    raise self.error("range can only initialize variables", second.pos)
                decl = [start.val, second.val]
                is_assign = op.kind == "assign"
            else:
                self.i = save
        # an assignment to an undeclared variable parses in Go 1.19; it fails when executed
        pipe = Pipeline(start.pos, decl, is_assign, [])
        while True:
            tok = self.peek()
            if tok.kind == "right" or (context == "paren" and tok.kind == "rparen"):
                self.next()
                break
            if tok.kind == "eof":
                raise self.error(f"unclosed action in {context}", tok.pos)
            pipe.cmds.append(self.command(context))
            tok = self.peek()
            if tok.kind == "pipe":
                self.next()  # Go 1.19 accepts an empty last stage (`{{ x | }}`)
        if not pipe.cmds:
            raise self.error(f"missing value for {context}", start.pos)
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            first = cmd.args[0]
            if isinstance(first, Literal | Dot):
                raise self.error(f"non executable command in pipeline stage {stage}", first.pos)
        self.vars.extend(decl)  # as Go 1.19's parser, for `=` too
        return pipe

    def command(self, context: str) -> Command:
        cmd = Command(self.peek().pos, [])
        while True:
            tok = self.peek(skip_space=False)
            if tok.kind == "space":
                self.next(skip_space=False)
                continue
            if tok.kind in ("right", "pipe") or (tok.kind == "rparen" and context == "paren"):
                break
            if tok.kind == "rparen":
                raise self.error("unexpected right paren", tok.pos)
            cmd.args.append(self.operand())
        if not cmd.args:
            raise self.error("empty command", cmd.pos)
        return cmd

    def operand(self) -> Node:
        term = self.term()
        names: list[str] = []
        while self.peek(skip_space=False).kind == "field":
            tok = self.next(skip_space=False)
            names.append(tok.val[1:])
        if not names:
            return term
        if isinstance(term, Field):
            return Field(term.pos, term.names + tuple(names))
        if isinstance(term, Variable):
            return Variable(term.pos, term.name, term.names + tuple(names))
        if isinstance(term, Literal | Dot):
            raise self.error(f"unexpected . after term {self.text[term.pos : self.toks[self.i - 1].pos]!r}", term.pos)
        return Chain(term.pos, term, tuple(names))

    def term(self) -> Node:
        tok = self.next(skip_space=False)
        k = tok.kind
        if k == "ident":
            if tok.val not in self.functions:
                raise self.error(f'function "{tok.val}" not defined', tok.pos)
            return Identifier(tok.pos, tok.val)
        if k == "dot":
            return Dot(tok.pos)
        if k == "field":
            return Field(tok.pos, (tok.val[1:],))
        if k == "var":
            if tok.val not in self.vars:
                raise self.error(f'undefined variable "{tok.val}"', tok.pos)
            return Variable(tok.pos, tok.val, ())
        if k == "keyword" and tok.val == "nil":
            return Literal(tok.pos, None, text="nil")
        if k == "bool":
            return Literal(tok.pos, tok.val == "true", text=tok.val)
        if k in ("string", "raw"):
            try:
                return Literal(tok.pos, unquote(tok.val), text=tok.val)
            except ValueError:
                raise self.error(f"invalid syntax: {tok.val}", tok.pos) from None
        if k == "char":
            try:
                ch = unquote('"' + tok.val[1:-1].replace('"', '\\"') + '"')
            except ValueError:
                raise self.error(f"malformed character constant: {tok.val}", tok.pos) from None
            if len(ch) != 1:
                raise self.error(f"malformed character constant: {tok.val}", tok.pos)
            return Literal(tok.pos, ord(ch), is_number=True, text=tok.val)
        if k == "number":
            value, ok = parse_number(tok.val)
            if not ok:
                raise self.error(f"bad number syntax: {tok.val!r}", tok.pos)
            return Literal(tok.pos, value, is_number=True, text=tok.val)
        if k == "lparen":
            pipe = self.pipeline("paren", allow_decl=False)
            return Chain(tok.pos, pipe, ())
        raise self.error(f"unexpected {tok.val!r} in operand", tok.pos)
