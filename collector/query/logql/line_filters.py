"""Line filters compiled to predicates on a line: literals, regexes (Go syntax), `or` chains and `ip("...")`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from collector.query.logql.ast import LineFilter
from collector.query.logql.regex import compile_go

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Candidate addresses in free text: runs of hex digits, colons and dots (an IPv6 address, possibly with a
# dotted-quad tail), and the dotted quads inside a run (`10.0.0.1:8080`); ipaddress then decides.
_ADDRESS_RUN = re.compile(r"[0-9A-Fa-f:.]{2,}")
_DOTTED_QUAD = re.compile(r"(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9])")


def ip_range(text: str) -> Callable[[IPAddress], bool]:
    """An address, a CIDR block or `first-last` (inclusive), as Loki's ip() accepts; raises ValueError."""
    text = text.strip()
    if "/" in text:
        net = ipaddress.ip_network(text, strict=False)
        return lambda a: a.version == net.version and a in net
    if "-" in text:
        lo_text, hi_text = text.split("-", 1)
        lo, hi = ipaddress.ip_address(lo_text.strip()), ipaddress.ip_address(hi_text.strip())
        if lo.version != hi.version or lo > hi:  # type: ignore[operator]
            raise ValueError(f"invalid ip range {text!r}")
        return lambda a: a.version == lo.version and lo <= a <= hi  # type: ignore[operator]
    one = ipaddress.ip_address(text)
    return lambda a: a == one


def addresses(text: str) -> list[IPAddress]:
    out: list[IPAddress] = []
    for run in _ADDRESS_RUN.finditer(text):
        token = run.group()
        candidates = [token, token.strip(".:"), *(m.group() for m in _DOTTED_QUAD.finditer(token))]
        for candidate in dict.fromkeys(candidates):
            try:
                out.append(ipaddress.ip_address(candidate))
                break
            except ValueError:
                continue
    return out


def _positive(f: LineFilter, value: str) -> Callable[[str], bool]:
    if f.ip:
        contains = ip_range(value)
        return lambda line: any(contains(a) for a in addresses(line))
    if f.op in ("|=", "!="):
        return lambda line: value in line
    pattern = compile_go(value)
    return lambda line: pattern.search(line) is not None


def line_filter(f: LineFilter) -> Callable[[str], bool]:
    """`|= a or b` keeps a line matching any value; `!= a or b` keeps a line matching none."""
    tests = [_positive(f, v) for v in (f.value, *f.alternatives)]
    if f.op in ("|=", "|~"):
        if len(tests) == 1:
            return tests[0]
        return lambda line: any(t(line) for t in tests)
    return lambda line: not any(t(line) for t in tests)
