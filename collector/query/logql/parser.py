"""LogQL text -> syntax tree (ast.py): log queries (log_parser.py) or metric queries (metric_parser.py)."""

from __future__ import annotations

from collector.query.logql.ast import LogQuery, ParseError, Query
from collector.query.logql.lexer import tokenize
from collector.query.logql.metric_parser import RANGE_FUNCTIONS, VECTOR_AGGREGATIONS, MetricParser

__all__ = ["RANGE_FUNCTIONS", "VECTOR_AGGREGATIONS", "parse", "parse_selector"]


def parse(text: str) -> Query:
    """A LogQL query; raises ParseError."""
    p = MetricParser(tokenize(text))
    query: Query = p.log_query() if p.peek().text == "{" else p.metric_expr()
    p.expect_end()
    return query


def parse_selector(text: str) -> LogQuery:
    """A log query (a stream selector, possibly with a pipeline): the `query`/`match[]` of label endpoints."""
    query = parse(text)
    if not isinstance(query, LogQuery):
        raise ParseError("only a stream selector is allowed here", 0)
    return query
