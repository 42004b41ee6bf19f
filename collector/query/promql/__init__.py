"""PromQL: parse with promql-parser, evaluate over a SeriesReader with Prometheus' semantics.

Entry point: `engine.Engine(reader).instant(...)` / `.range(...)` -> `values.QueryResult`, errors as
`errors.PromQLError(error_type, message)`. The store implements `storage.SeriesReader`; `memory_reader`
is the in-memory one. `conformance` runs Prometheus' promqltest files (`python -m
collector.query.promql.conformance DIR`).
"""
