"""Strict reading of YAML nodes (PyYAML's composed tree) with positions, as Go's yaml.v3 with KnownFields reads.

Rule files are read from nodes rather than from PyYAML's loaded values for three reasons: every error must
name its line; a duplicate key must be an error (yaml.v3 refuses it, PyYAML keeps the last); and a string
field takes the scalar's text as written (`yes` stays "yes", `1e3` stays "1e3"), as yaml.v3 does when it
decodes any scalar into a Go string, where PyYAML's YAML 1.1 resolver would turn it into a bool or number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import yaml

NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_RE = re.compile(r"[-+]?(?:0|[1-9][0-9]*|0[xX][0-9a-fA-F]+|0o[0-7]+)")


class NodeError(Exception):
    """A YAML shape error at `node` (its 1-based line and column)."""

    def __init__(self, node: yaml.Node | None, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1 if self.node is not None else 0

    @property
    def column(self) -> int:
        return self.node.start_mark.column + 1 if self.node is not None else 0


def compose(text: str) -> yaml.Node | None:
    """The first document's node tree (None for an empty file); yaml.YAMLError on bad syntax."""
    for doc in yaml.compose_all(text, Loader=yaml.SafeLoader):
        return doc
    return None


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG and node.style is None


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "!!map"
    if isinstance(node, yaml.SequenceNode):
        return "!!seq"
    return "!!" + node.tag.rsplit(":", 1)[-1]


def mapping(node: yaml.Node, type_name: str, known: tuple[str, ...]) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """(key, key node, value node) of a mapping with only `known` keys; a null node is an empty mapping."""
    if is_null(node):
        return
    if not isinstance(node, yaml.MappingNode):
        raise NodeError(node, f"cannot unmarshal {_kind(node)} into {type_name}")
    seen: dict[str, yaml.Node] = {}
    for key_node, value_node in _merged_pairs(node):
        key = scalar_text(key_node)
        if key in seen:
            raise NodeError(key_node, f'mapping key "{key}" already defined at line {line_of(seen[key])}')
        seen[key] = key_node
        if known and key not in known:
            raise NodeError(key_node, f"field {key} not found in type {type_name}")
        yield key, key_node, value_node


def _merged_pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """The mapping's pairs with `<<: *anchor` merge keys expanded, as yaml.v3 does: the mapping's own keys
    win over merged ones, and among merged mappings the first one listed wins."""
    own = [(k, v) for k, v in node.value if k.tag != MERGE_TAG]
    own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for k, v in node.value:
        if k.tag != MERGE_TAG:
            continue
        sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise NodeError(source, "map merge requires map or sequence of maps as the value")
            for mk, mv in _merged_pairs(source):
                if mk.value not in own_keys:
                    own_keys.add(mk.value)
                    merged.append((mk, mv))
    return own + merged


def sequence(node: yaml.Node, type_name: str) -> list[yaml.Node]:
    if is_null(node):
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise NodeError(node, f"cannot unmarshal {_kind(node)} into []{type_name}")
    return list(node.value)


def scalar_text(node: yaml.Node) -> str:
    """A scalar decoded into a Go string: its text as written; null is ""."""
    if not isinstance(node, yaml.ScalarNode):
        raise NodeError(node, f"cannot unmarshal {_kind(node)} into string")
    if is_null(node):
        return ""
    return str(node.value)


def string_map(node: yaml.Node) -> dict[str, str]:
    """map[string]string."""
    return {key: scalar_text(value) for key, _, value in mapping(node, "map[string]string", ())}


def integer(node: yaml.Node) -> int:
    if is_null(node):
        return 0
    if isinstance(node, yaml.ScalarNode) and node.style is None and _INT_RE.fullmatch(node.value):
        return int(node.value, 0)
    text = node.value if isinstance(node, yaml.ScalarNode) else ""
    raise NodeError(node, f"cannot unmarshal {_kind(node)} `{text}` into int")


def number(node: yaml.Node) -> float:
    if isinstance(node, yaml.ScalarNode) and node.style is None:
        try:
            return float(node.value.replace("_", ""))
        except ValueError:
            pass
    text = node.value if isinstance(node, yaml.ScalarNode) else ""
    raise NodeError(node, f"cannot unmarshal {_kind(node)} `{text}` into float64")
