"""The routing tree: which routes (and so receivers and grouping options) an alert's labels go to.

Alertmanager semantics: a route matches when all its matchers do; its children are tried in order, the
first matching child wins unless it has `continue`; a matching route with no matching child handles the
alert itself. Unset options are inherited from the parent. The root route matches every alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerting.notify.config import GROUP_BY_ALL, RouteConfig
from alerting.notify.matchers import Matcher, matchers_string, parse_matchers

DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 0.0  # Kapacitor's stateChangesOnly: an unchanged group is never notified again


@dataclass(frozen=True, eq=False)
class Route:
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: frozenset[str]
    group_by_all: bool
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    continue_: bool
    routes: tuple[Route, ...]
    key: str  # Alertmanager's Route.Key(): the parents' matchers and this route's, joined by '/'
    id: str  # the key plus the index among siblings, unique even for siblings with equal matchers

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that handle `labels`, in tree order (empty when this route does not match)."""
        if not all(m.matches(labels) for m in self.matchers):
            return []
        found: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            found.extend(hits)
            if hits and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels an alert is grouped by on this route (absent group_by labels are left out)."""
        if self.group_by_all:
            return dict(labels)
        return {k: v for k, v in labels.items() if k in self.group_by}

    def walk(self) -> list[Route]:
        out = [self]
        for child in self.routes:
            out.extend(child.walk())
        return out


def build_route(config: RouteConfig, parent: Route | None = None, index: int = 0) -> Route:
    """Resolve a route config into a Route tree, filling unset options from the parent or the defaults."""
    matchers = tuple(m for text in config.matchers for m in parse_matchers(text))
    receiver = config.receiver if config.receiver is not None else (parent.receiver if parent else "")
    if config.group_by is not None:
        group_by_all = config.group_by == ("...",) or GROUP_BY_ALL in config.group_by
        group_by = frozenset() if group_by_all else frozenset(config.group_by)
    else:
        group_by_all = parent.group_by_all if parent else False
        group_by = parent.group_by if parent else frozenset()

    def pick(own: float | None, inherited: float | None, default: float) -> float:
        return own if own is not None else inherited if inherited is not None else default

    key = matchers_string(matchers) if parent is None else f"{parent.key}/{matchers_string(matchers)}"
    route_id = key if parent is None else f"{parent.id}/{matchers_string(matchers)}/{index}"
    children: list[Route] = []
    route = Route(
        receiver=receiver,
        matchers=matchers,
        group_by=group_by,
        group_by_all=group_by_all,
        group_wait_s=pick(config.group_wait, parent.group_wait_s if parent else None, DEFAULT_GROUP_WAIT_S),
        group_interval_s=pick(
            config.group_interval, parent.group_interval_s if parent else None, DEFAULT_GROUP_INTERVAL_S
        ),
        repeat_interval_s=pick(
            config.repeat_interval, parent.repeat_interval_s if parent else None, DEFAULT_REPEAT_INTERVAL_S
        ),
        continue_=config.continue_,
        routes=(),
        key=key,
        id=route_id,
    )
    for i, child in enumerate(config.routes):
        children.append(build_route(child, route, i))
    object.__setattr__(route, "routes", tuple(children))
    return route
