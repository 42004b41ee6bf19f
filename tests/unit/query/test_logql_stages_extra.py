"""The pipeline stages of issue 6 one line at a time: regexp, pattern, unpack, decolorize, and line filters
with `or`, `ip("...")`, backtick strings and Go regex flags."""

from __future__ import annotations

import pytest

from collector.query.logql.ast import LogQuery
from collector.query.logql.parser import parse
from collector.query.logql.stages import Pipeline

APACHE = '10.0.0.7 - - [29/Nov/2026:10:00:00 +0000] "GET /api/orders HTTP/1.1" 200 512'


def run(stages: str, line: str) -> tuple[str, dict[str, str]] | None:
    query = parse('{app="x"}' + stages)
    assert isinstance(query, LogQuery)
    return Pipeline(query.stages).run(line, {"app": "x"}, 0)


KEEP = object()  # the line passes unchanged, with the stream labels only

STAGES: list[tuple[str, str, object]] = [
    (
        ' | regexp "(?P<ip>\\\\S+) - (?P<user>\\\\S+) \\\\[(?P<when>[^]]+)\\\\]"',
        APACHE,
        (APACHE, {"app": "x", "ip": "10.0.0.7", "user": "-", "when": "29/Nov/2026:10:00:00 +0000"}),
    ),
    (' | regexp "(?P<app>\\\\w+)"', "hello", ("hello", {"app": "x", "app_extracted": "hello"})),
    (' | regexp "^(?P<n>\\\\d+)$"', "no digits", KEEP),
    (" | regexp `(?P<a>x)?(?P<b>y)`", "y", ("y", {"app": "x", "b": "y"})),  # a group that took no part: no label
    (
        ' | pattern `<ip> - <_> [<ts>] "<method> <path> <_>" <status> <size>`',
        APACHE,
        (
            APACHE,
            {
                "app": "x",
                "ip": "10.0.0.7",
                "ts": "29/Nov/2026:10:00:00 +0000",
                "method": "GET",
                "path": "/api/orders",
                "status": "200",
                "size": "512",
            },
        ),
    ),
    (' | pattern "GET <path>"', APACHE, KEEP),  # a leading literal must start the line
    (' | pattern "<a> | <b>"', "left only", ("left only", {"app": "x", "a": "left only"})),  # literal missing: rest
    (' | pattern "<_> <word>"', "one two three", ("one two three", {"app": "x", "word": "two three"})),
    (
        " | unpack",
        '{"_entry": "the original line", "k8s_pod": "p1", "n": 5, "nested": {"a": "b"}, "app": "y"}',
        ("the original line", {"app": "x", "k8s_pod": "p1", "app_extracted": "y"}),
    ),
    (" | unpack", "not json", ("not json", {"app": "x", "__error__": "JSONParserErr"})),
    (" | decolorize", "\x1b[31mERROR\x1b[0m disk \x1b[1;33mfull\x1b[m", ("ERROR disk full", {"app": "x"})),
    (' |= "a" or "b"', "xbx", KEEP),
    (' |= "a" or "b"', "xcx", None),
    (' != "a" or "b"', "xbx", None),
    (' != "a" or "b"', "xcx", KEEP),
    (' |~ "^z" or "c$"', "abc", KEEP),
    (' |~ "(?i)error"', "an ERROR here", KEEP),
    (' |~ "disk (?i)full"', "disk FULL", KEEP),
    (' |~ "disk (?i)full"', "DISK full", None),
    (" |~ `\\d{3} \\w+`", "code 503 unavailable", KEEP),
    (' |= ip("10.0.0.0/8")', APACHE, KEEP),
    (' |= ip("10.0.0.0/8")', "from 192.168.1.1 to 110.0.0.1", None),
    (' != ip("10.0.0.0/8")', APACHE, None),
    (' |= ip("192.168.0.1-192.168.0.10")', "peer=192.168.0.9:443", KEEP),
    (' |= ip("192.168.0.1-192.168.0.10")', "peer=192.168.0.11:443", None),
    (' |= ip("2001:db8::/32")', "client [2001:db8::1]:8080 said hi", KEEP),
    (' |= ip("127.0.0.1") or ip("::1")', "listening on ::1", KEEP),
    (' | regexp "(?P<method>GET|POST) (?P<path>\\\\S+)" | path=~"/api/.*"', APACHE, (APACHE, None)),
    (' | pattern "<addr> <_>" | addr = ip("10.0.0.0/24")', APACHE, (APACHE, None)),
    (' | pattern "<addr> <_>" | addr != ip("10.0.0.0/24")', APACHE, None),
    (' | pattern "<addr> <_>" | addr = ip("10.0.1.0/24") or addr="10.0.0.7"', APACHE, (APACHE, None)),
]


@pytest.mark.parametrize(("stages", "line", "expected"), STAGES, ids=[f"{s[0]} <- {s[1]!r}" for s in STAGES])
def test_stage(stages: str, line: str, expected: object) -> None:
    got = run(stages, line)
    if expected is None:
        assert got is None
        return
    assert got is not None
    if expected is KEEP:
        assert got == (line, {"app": "x"})
        return
    assert isinstance(expected, tuple)
    assert got[0] == expected[0]
    if expected[1] is not None:
        assert got[1] == expected[1]
