"""Go text/template lexing: template text into tokens, and Go's literal syntax (numbers, quoted strings).

Positions are offsets into the template text; TemplateError carries 1-based line and column.
"""

from __future__ import annotations

from dataclasses import dataclass

KEYWORDS = ("block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with")


class TemplateError(Exception):
    """A template that does not parse (at `line`:`col`) or could not be executed."""

    def __init__(self, message: str, line: int = 0, col: int = 0, pos: int = 0) -> None:
        super().__init__(f"{line}:{col}: {message}" if line else message)
        self.line = line
        self.col = col
        self.pos = pos  # offset in the template text
        self.reason = message


@dataclass
class Token:
    kind: str  # text, left, right, space, ident, field, var, string, raw, char, number, bool, pipe, lparen,
    # rparen, declare, assign, comma, keyword, dot, eof, comment
    val: str
    pos: int


_SPACE = " \t\r\n"


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalnum()


def lex(text: str) -> list[Token]:
    toks: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        j = text.find("{{", i)
        if j < 0:
            toks.append(Token("text", text[i:], i))
            break
        trim_left = j + 2 < n and text[j + 2] == "-" and j + 3 < n and text[j + 3] in _SPACE
        chunk = text[i:j]
        if trim_left:
            chunk = chunk.rstrip(_SPACE)
        if chunk:
            toks.append(Token("text", chunk, i))
        i = _lex_action(text, j, trim_left, toks)
    toks.append(Token("eof", "", n))
    return toks


def _right_delim_at(text: str, i: int) -> tuple[bool, bool]:
    """(is a right delimiter here, with trim marker)."""
    if text.startswith("}}", i):
        return True, False
    if text[i] in _SPACE:
        k = i
        while k < len(text) and text[k] in _SPACE:
            k += 1
        if text.startswith("-}}", k) and k > i:
            return True, True
    return False, False


def _after_right(text: str, i: int, trim: bool) -> int:
    """Offset after the right delimiter starting at i (spaces then -}} when trim), trimming following space."""
    if not trim:
        return i + 2
    k = i
    while text[k] in _SPACE:
        k += 1
    k += 3
    while k < len(text) and text[k] in _SPACE:
        k += 1
    return k


def _lex_action(text: str, start: int, trim_left: bool, toks: list[Token]) -> int:
    n = len(text)
    i = start + (4 if trim_left else 2)
    toks.append(Token("left", "{{", start))
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        if end < 0:
            raise _lex_error("unclosed comment", text, start)
        k = end + 2
        is_right, trim = _right_delim_at(text, k) if k < n else (False, False)
        if not is_right:
            raise _lex_error("comment ends before closing delimiter", text, start)
        toks.pop()
        return _after_right(text, k, trim)
    paren = 0
    while True:
        if i >= n:
            raise _lex_error("unclosed action", text, start)
        is_right, trim = _right_delim_at(text, i)
        if is_right:
            if paren > 0:
                raise _lex_error("unclosed left paren", text, i)
            toks.append(Token("right", "}}", i))
            return _after_right(text, i, trim)
        c = text[i]
        if c in _SPACE:
            k = i
            while k < n and text[k] in _SPACE:
                k += 1
            toks.append(Token("space", text[i:k], i))
            i = k
        elif c == "=":
            toks.append(Token("assign", "=", i))
            i += 1
        elif c == ":":
            if not text.startswith(":=", i):
                raise _lex_error("expected :=", text, i)
            toks.append(Token("declare", ":=", i))
            i += 2
        elif c == "|":
            toks.append(Token("pipe", "|", i))
            i += 1
        elif c == ",":
            toks.append(Token("comma", ",", i))
            i += 1
        elif c == "(":
            paren += 1
            toks.append(Token("lparen", "(", i))
            i += 1
        elif c == ")":
            paren -= 1
            if paren < 0:
                raise _lex_error("unexpected right paren", text, i)
            toks.append(Token("rparen", ")", i))
            i += 1
        elif c == '"':
            k = i + 1
            while k < n and text[k] != '"':
                if text[k] == "\\":
                    k += 1
                if k >= n or text[k] == "\n":
                    raise _lex_error("unterminated quoted string", text, i)
                k += 1
            if k >= n:
                raise _lex_error("unterminated quoted string", text, i)
            toks.append(Token("string", text[i : k + 1], i))
            i = k + 1
        elif c == "`":
            k = text.find("`", i + 1)
            if k < 0:
                raise _lex_error("unterminated raw quoted string", text, i)
            toks.append(Token("raw", text[i : k + 1], i))
            i = k + 1
        elif c == "'":
            k = i + 1
            while k < n and text[k] != "'":
                if text[k] == "\\":
                    k += 1
                k += 1
            if k >= n:
                raise _lex_error("unterminated character constant", text, i)
            toks.append(Token("char", text[i : k + 1], i))
            i = k + 1
        elif c == "$":
            k = i + 1
            while k < n and _is_alnum(text[k]):
                k += 1
            toks.append(Token("var", text[i:k], i))
            i = k
        elif c == "." and not (i + 1 < n and text[i + 1].isdigit()):
            k = i + 1
            while k < n and _is_alnum(text[k]):
                k += 1
            toks.append(Token("field" if k > i + 1 else "dot", text[i:k], i))
            i = k
        elif c.isdigit() or (c in "+-." and i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == ".")):
            k = i + 1
            while k < n and (_is_alnum(text[k]) or text[k] in ".+-"):
                # a sign belongs to the number only right after an exponent marker
                if text[k] in "+-" and text[k - 1] not in "eEpP":
                    break
                k += 1
            toks.append(Token("number", text[i:k], i))
            i = k
        elif _is_alnum(c):
            k = i
            while k < n and _is_alnum(text[k]):
                k += 1
            word = text[i:k]
            kind = "keyword" if word in KEYWORDS else "bool" if word in ("true", "false") else "ident"
            toks.append(Token(kind, word, i))
            i = k
        else:
            raise _lex_error(f"unexpected {c!r} in command", text, i)
        if (
            toks[-1].kind in ("var", "field", "ident", "keyword", "bool", "dot")
            and i < n
            and not _at_terminator(text, i)
        ):
            raise _lex_error(f"bad character U+{ord(text[i]):04X} {text[i]!r}", text, i)


def _at_terminator(text: str, i: int) -> bool:
    """Go's atTerminator: what may follow a variable, field or identifier."""
    return text[i] in _SPACE or text[i] in ".,|:()" or text.startswith("}}", i)


def _lex_error(message: str, text: str, pos: int) -> TemplateError:
    return TemplateError(message, *line_col(text, pos), pos=pos)


def line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def parse_number(text: str) -> tuple[object, bool]:
    """A Go number constant as the value text/template gives it: int unless it needs to be a float (or an
    imaginary constant, `1i`, a complex)."""
    body = text.replace("_", "")
    if body.endswith("i"):
        imag, ok = parse_number(body[:-1])
        return (complex(0, imag), True) if ok and isinstance(imag, int | float) else (None, False)
    hexadecimal = body.lower().lstrip("+-").startswith("0x")
    try:
        if hexadecimal and "p" in body.lower():
            return float.fromhex(body), True
        if not hexadecimal and any(c in body for c in ".eE"):
            return float(body), True
        if len(body.lstrip("+-")) > 1 and body.lstrip("+-")[0] == "0" and body.lstrip("+-")[1].isdigit():
            return int(body.replace("0", "0o", 1), 0), True  # Go's legacy octal: 017
        return int(body, 0), True
    except ValueError:
        return None, False


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


def unquote(tok: str) -> str:
    """Go's strconv.Unquote for "..." and '...' (raw `...` strings are taken as they are)."""
    if tok[0] == "`":
        return tok[1:-1]
    body = tok[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1] if i + 1 < len(body) else ""
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif e in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("invalid syntax")
    return "".join(out)
