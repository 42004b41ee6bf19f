"""The route table: which route a request path belongs to, and the path to ask the upstream for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config import RouteSettings


@dataclass(frozen=True)
class RouteMatch:
    route: RouteSettings
    upstream_path: str  # always starts with "/"


class RouteTable:
    """Longest-prefix match on whole path segments: `/api/orders` matches `/api/orders` and
    `/api/orders/7`, never `/api/ordersx`."""

    def __init__(self, routes: Sequence[RouteSettings]) -> None:
        self._routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)

    def match(self, path: str) -> RouteMatch | None:
        for route in self._routes:
            prefix = "" if route.prefix == "/" else route.prefix
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) :]
                return RouteMatch(route, (route.upstream_prefix + rest) or "/")
        return None
