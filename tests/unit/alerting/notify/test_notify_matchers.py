"""Alertmanager matchers: parsing (quoted, bare, braced lists), matching, and errors that say where."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.notify.matchers import Matcher, MatcherError, MatchOp, matchers_string, parse_matcher, parse_matchers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('service="orders"', [("service", MatchOp.EQ, "orders")]),
        ("service=orders", [("service", MatchOp.EQ, "orders")]),
        ('service != "orders"', [("service", MatchOp.NE, "orders")]),
        ('{a="b", c=~"x.*"}', [("a", MatchOp.EQ, "b"), ("c", MatchOp.RE, "x.*")]),
        ('{a!~"b|c",}', [("a", MatchOp.NRE, "b|c")]),
        ("{}", []),
        ('a="with \\"quote\\" and , comma"', [("a", MatchOp.EQ, 'with "quote" and , comma')]),
        ("a=b, c!=d", [("a", MatchOp.EQ, "b"), ("c", MatchOp.NE, "d")]),
    ],
)
def test_parse(text: str, expected: list[tuple[str, MatchOp, str]]) -> None:
    assert [(m.name, m.op, m.value) for m in parse_matchers(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('1a="b"', "expected a label name at offset 0"),
        ('a>"b"', "expected one of = != =~ !~ after 'a' at offset 1"),
        ('a="b', "unterminated quoted value starting at offset 2"),
        ('{a="b"', "expected '}' at offset 6"),
        ('a="b" c="d"', "unexpected 'c' at offset 6"),
        ('a=~"("', "invalid regex '(' for label 'a'"),
        ('a="\\q"', "invalid escape"),
        ("", "no matcher"),
    ],
)
def test_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(MatcherError, match=message.replace("(", r"\(").replace("{", r"\{")):
        parse_matchers(text)


@pytest.mark.parametrize(
    ("matcher", "labels", "hit"),
    [
        ('service="orders"', {"service": "orders"}, True),
        ('service="orders"', {"service": "orders-v2"}, False),
        ('service!="orders"', {}, True),  # absent is the empty string
        ('service=""', {}, True),
        ('service=~"ord.*"', {"service": "orders"}, True),
        ('service=~"ord"', {"service": "orders"}, False),  # anchored at both ends
        ('service=~"rders"', {"service": "orders"}, False),
        ('service!~"ord.*"', {"service": "orders"}, False),
        ('service!~"ord.*"', {"service": "payments"}, True),
        ('service=~"orders|payments"', {"service": "payments"}, True),
    ],
)
def test_matches(matcher: str, labels: dict[str, str], hit: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is hit


def test_string_form_is_alertmanagers() -> None:
    assert matchers_string(parse_matchers('{b=~"x.*", a = b}')) == '{b=~"x.*",a="b"}'
    with pytest.raises(MatcherError, match="exactly one"):
        parse_matcher("a=b, c=d")


@given(
    name=st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True),
    op=st.sampled_from([MatchOp.EQ, MatchOp.NE]),
    value=st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
)
def test_string_form_round_trips(name: str, op: MatchOp, value: str) -> None:
    m = Matcher(name, op, value)
    assert parse_matchers(str(m)) == (m,)
    assert parse_matchers(matchers_string([m, m])) == (m, m)
