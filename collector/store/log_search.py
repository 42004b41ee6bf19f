"""LogQL reads from otel_logs: stream selectors, the time range and literal line filters run in ClickHouse.

Stream labels of a record: `service_name` (ServiceName), `level` (SeverityText lowercased, `warning` as
`warn`, else the name of its SeverityNumber range), the configured resource attributes with dots as
underscores (Loki's OTLP label mapping), and the resource attributes without a dot, which is how labels
pushed to /loki/api/v1/push are stored. Structured metadata: trace_id, span_id and the log attributes
(dots as underscores). Every value from a query reaches SQL as a bound parameter (regexes too: RE2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.query.logql.ast import LineFilter, Matcher
from collector.query.logql.storage import Entry, Selection, WindowTotals
from collector.store.engine import Engine

# Resource attributes that become stream labels by default, as Loki's default OTLP config indexes them.
DEFAULT_LABEL_ATTRIBUTES = (
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "host.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
)

LEVEL_SQL = (
    "multiIf(SeverityText = '', multiIf(SeverityNumber >= 21, 'fatal', SeverityNumber >= 17, 'error', "
    "SeverityNumber >= 13, 'warn', SeverityNumber >= 9, 'info', SeverityNumber >= 5, 'debug', "
    "SeverityNumber >= 1, 'trace', ''), lower(SeverityText) = 'warning', 'warn', lower(SeverityText))"
)


def label_name(attribute: str) -> str:
    return attribute.replace(".", "_").replace("-", "_")


@dataclass(frozen=True)
class StreamStats:
    streams: int
    entries: int
    bytes: int


class LogSearch:
    """Reads for the Loki API; `label_attributes` are the resource attributes that are stream labels."""

    def __init__(self, engine: Engine, database: str, label_attributes: Sequence[str] = DEFAULT_LABEL_ATTRIBUTES):
        self._engine = engine
        self._db = database
        self._attributes = tuple(label_attributes)
        self._by_label = {label_name(a): a for a in self._attributes}

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._engine.query(sql.replace("{db}.", f"{self._db}."), params).to_pylist()

    # -- label sets -------------------------------------------------------------------------------

    def stream_labels(self, service: str, level: str, resource: Sequence[tuple[str, str]]) -> dict[str, str]:
        labels: dict[str, str] = {}
        for key, value in resource:
            if key in self._attributes:
                labels[label_name(key)] = value
            elif "." not in key and key not in labels:
                labels[key] = value
        if service:
            labels["service_name"] = service
        if level:
            labels["level"] = level
        return {k: v for k, v in labels.items() if v != ""}

    def _label_sql(self, label: str, params: dict[str, Any], key: str) -> str:
        if label == "service_name":
            return "ServiceName"
        if label == "level":
            return LEVEL_SQL
        params[key] = label
        attribute = self._by_label.get(label)
        if attribute is None:
            return f"ResourceAttributes[{{{key}:String}}]"
        params[key + "d"] = attribute
        return (
            f"if(mapContains(ResourceAttributes, {{{key}d:String}}), ResourceAttributes[{{{key}d:String}}], "
            f"ResourceAttributes[{{{key}:String}}])"
        )

    def _where(
        self, matchers: Sequence[Matcher], start_ns: int, end_ns: int, filters: Sequence[LineFilter] = ()
    ) -> tuple[str, dict[str, Any]]:
        where: list[str] = []
        params: dict[str, Any] = {}
        for i, m in enumerate(matchers):
            expr = self._label_sql(m.label, params, f"l{i}")
            if m.op in ("=", "!="):
                where.append(f"{expr} {m.op} {{v{i}:String}}")
                params[f"v{i}"] = m.value
            else:
                negate = "NOT " if m.op == "!~" else ""
                where.append(f"{negate}match({expr}, {{v{i}:String}})")
                params[f"v{i}"] = f"^(?:{m.value})$"  # Loki's label regexes are fully anchored
        for i, f in enumerate(filters):
            # A literal filter is a LIKE with the literal escaped (the same substring test as position()):
            # the body's token index then skips granules missing a whole word of the literal (one with a
            # separator on both sides, such as `refused` in "connection refused by"), which it cannot
            # do for position().
            literal = f.op in ("|=", "!=")
            params[f"f{i}"] = f"%{like_escape(f.value)}%" if literal else f.value
            where.append(
                {
                    "|=": f"Body LIKE {{f{i}:String}}",
                    "!=": f"Body NOT LIKE {{f{i}:String}}",
                    "|~": f"match(Body, {{f{i}:String}})",
                    "!~": f"NOT match(Body, {{f{i}:String}})",
                }[f.op]
            )
        # TimestampTime (whole seconds) is in the primary key: its bounds prune granules before Timestamp is read.
        where.append("TimestampTime >= toDateTime(intDiv({start:Int64}, 1000000000))")
        where.append("TimestampTime <= toDateTime(intDiv({end:Int64}, 1000000000))")
        where.append("Timestamp >= fromUnixTimestamp64Nano({start:Int64})")
        where.append("Timestamp < fromUnixTimestamp64Nano({end:Int64})")
        params["start"], params["end"] = start_ns, end_ns
        return " AND ".join(where), params

    # -- entries ----------------------------------------------------------------------------------

    def entries(self, selection: Selection) -> list[Entry]:
        where, params = self._where(selection.matchers, selection.start_ns, selection.end_ns, selection.line_filters)
        params["limit"] = selection.limit
        direction = "DESC" if selection.backward else "ASC"
        rows = self._rows(
            f"""SELECT toUnixTimestamp64Nano(Timestamp) AS Ns, ServiceName, {LEVEL_SQL} AS Level,
                ResourceAttributes, LogAttributes, TraceId, SpanId, Body
            FROM {{db}}.otel_logs WHERE {where}
            ORDER BY Timestamp {direction} LIMIT {{limit:UInt32}}""",
            params,
        )
        out = []
        for r in rows:
            stream = self.stream_labels(r["ServiceName"], r["Level"], r["ResourceAttributes"])
            metadata = {label_name(k): v for k, v in r["LogAttributes"]}
            if r["TraceId"]:
                metadata["trace_id"] = r["TraceId"]
            if r["SpanId"]:
                metadata["span_id"] = r["SpanId"]
            out.append(Entry(r["Ns"], r["Body"], stream, metadata))
        return out

    def indexed_label(self, name: str) -> bool:
        return name in ("service_name", "level") or name in self._by_label

    def window_totals(
        self,
        selection: Selection,
        by: Sequence[str],
        first_step_ns: int,
        step_ns: int,
        steps: int,
        range_ns: int,
        *,
        line_bytes: bool = False,
    ) -> list[WindowTotals]:
        """Entries (and line bytes when `line_bytes`, else 0s) per group of `by` labels in each window
        (t - range, t], t = first + k * step, counted in ClickHouse: each entry is spread over the steps whose
        window holds it (ARRAY JOIN). Without line filters, counting alone never reads Body, the widest column."""
        where, params = self._where(selection.matchers, selection.start_ns, selection.end_ns, selection.line_filters)
        groups = [self._label_sql(name, params, f"g{i}") + f" AS g{i}" for i, name in enumerate(by)]
        # k_lo: the first step at or after the entry; k_hi: the last step before entry + range. `shift` whole
        # steps keep intDiv's operand non-negative (entries start up to `range` before the first step).
        shift = range_ns // step_ns + 2
        params.update(
            {
                "step": step_ns,
                "steps": steps,
                "shift": shift,
                "lo": shift * step_ns + step_ns - 1 - first_step_ns,
                "hi": range_ns - 1 - first_step_ns,
            }
        )
        ns = "toUnixTimestamp64Nano(Timestamp)"
        k_lo = f"greatest(intDiv({ns} + {{lo:Int64}}, {{step:Int64}}) - {{shift:Int64}}, 0)"
        k_hi = f"least(intDiv({ns} + {{hi:Int64}}, {{step:Int64}}), {{steps:Int64}} - 1)"
        select = ", ".join([*groups, "k", "count() AS n", "sum(length(Body)) AS b" if line_bytes else "0 AS b"])
        group_by = ", ".join([f"g{i}" for i in range(len(by))] + ["k"])
        rows = self._engine.query(
            f"SELECT {select} FROM {self._db}.otel_logs ARRAY JOIN range({k_lo}, {k_hi} + 1) AS k "
            f"WHERE {where} GROUP BY {group_by} ORDER BY {group_by}",
            params,
        ).to_pylist()
        out: dict[tuple[str, ...], WindowTotals] = {}
        for r in rows:
            key = tuple(r[f"g{i}"] for i in range(len(by)))
            totals = out.get(key)
            if totals is None:
                labels = {name: value for name, value in zip(by, key, strict=True) if value != ""}
                totals = out[key] = WindowTotals(labels, [], [], [])
            totals.steps.append(r["k"])
            totals.entries.append(r["n"])
            totals.bytes.append(r["b"])
        return list(out.values())

    # -- streams, labels, stats -------------------------------------------------------------------

    def streams(
        self, matchers: Sequence[Matcher], start_ns: int, end_ns: int, limit: int = 10_000
    ) -> list[dict[str, str]]:
        """The distinct stream label sets with entries in the range (all streams when `matchers` is empty)."""
        where, params = self._where(matchers, start_ns, end_ns)
        params["attrs"] = list(self._attributes)
        params["limit"] = limit
        rows = self._rows(
            f"""SELECT DISTINCT ServiceName, {LEVEL_SQL} AS Level,
                mapFilter((k, v) -> position(k, '.') = 0 OR k IN {{attrs:Array(String)}}, ResourceAttributes) AS Res
            FROM {{db}}.otel_logs WHERE {where} LIMIT {{limit:UInt32}}""",
            params,
        )
        seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for r in rows:
            labels = self.stream_labels(r["ServiceName"], r["Level"], r["Res"])
            seen.setdefault(tuple(sorted(labels.items())), labels)
        return list(seen.values())

    def stats(self, matchers: Sequence[Matcher], start_ns: int, end_ns: int) -> StreamStats:
        where, params = self._where(matchers, start_ns, end_ns)
        rows = self._rows(
            f"SELECT count() AS n, sum(length(Body)) AS b FROM {{db}}.otel_logs WHERE {where}",
            params,
        )
        streams = len(self.streams(matchers, start_ns, end_ns)) if rows and rows[0]["n"] else 0
        return StreamStats(streams, int(rows[0]["n"]) if rows else 0, int(rows[0]["b"] or 0) if rows else 0)


def like_escape(text: str) -> str:
    """`text` matched literally inside a LIKE pattern: backslash, % and _ escaped with a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
