"""The alerting service's HTTP API on port 9094: Prometheus' rules and alerts, Alertmanager's silences, ops.

- `GET /api/v1/rules`, `GET /api/v1/alerts`: Prometheus' shapes and envelope (the collector proxies both, so
  Grafana's Prometheus datasource shows our rules and alerts). `/api/v1/rules` filters by `type`
  (alert|record), `rule_name[]`, `rule_group[]` and `file[]` as Prometheus does.
- `/api/v2/silences` (GET, POST), `/api/v2/silence/{id}` (GET, DELETE): Alertmanager's v2 shapes, so
  `amtool --alertmanager.url` and Grafana's Alertmanager datasource can manage our silences.
- `POST /-/reload` (and SIGHUP, see __main__) re-reads the rule files without losing state; `/-/healthy`,
  `/-/ready`, `/metrics`.
Handlers are thin: parse, call the service, map errors in one place per API.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alerting.notify.matchers import MatcherError, parse_matchers
from alerting.notify.silences import SilenceError, SilenceNotFound, silence_from_json
from alerting.service import AlertingService, ReloadError


def _prom_success(data: Any) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data})


def _prom_error(error_type: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"status": "error", "errorType": error_type, "error": message}, status_code=status)


def _filter_groups(groups: list[dict[str, Any]], request: Request) -> list[dict[str, Any]] | JSONResponse:
    q = request.query_params
    kind = q.get("type", "").lower()
    if kind not in ("", "alert", "record"):
        return _prom_error("bad_data", f'invalid query parameter type="{kind}": must be "alert" or "record"', 400)
    names, group_names, files = set(q.getlist("rule_name[]")), set(q.getlist("rule_group[]")), set(q.getlist("file[]"))
    out = []
    for g in groups:
        if (group_names and g["name"] not in group_names) or (files and g["file"] not in files):
            continue
        rules = [
            r
            for r in g["rules"]
            if (not kind or r["type"] == ("alerting" if kind == "alert" else "recording"))
            and (not names or r["name"] in names)
        ]
        # Prometheus leaves out a group whose rules were all filtered away, but keeps an empty group unfiltered.
        if rules or not (kind or names):
            out.append({**g, "rules": rules})
    return out


def alerting_app(service: AlertingService) -> FastAPI:
    app = FastAPI(title="Observatory alerting", docs_url="/docs", redoc_url=None)
    silences = service.dispatcher.silences

    @app.get("/api/v1/rules", summary="Rule groups with their state (Prometheus' shape)")
    def rules(request: Request) -> Response:
        groups = _filter_groups(service.engine.rule_groups(), request)
        return groups if isinstance(groups, JSONResponse) else _prom_success({"groups": groups})

    @app.get("/api/v1/alerts", summary="Pending and firing alerts (Prometheus' shape)")
    def alerts() -> Response:
        return _prom_success({"alerts": service.engine.alerts()})

    @app.get("/api/v2/silences", summary="Silences (Alertmanager v2), optionally filtered by matchers")
    def list_silences(request: Request) -> Response:
        try:
            wanted = [m for text in request.query_params.getlist("filter") for m in parse_matchers(text)]
        except MatcherError as exc:
            return JSONResponse(f"bad filter: {exc}", status_code=400)
        now = time.time()
        out = []
        for s in silences.list():
            # Alertmanager's filter keeps a silence with a matcher equal to each filter matcher.
            if all(any(m == sm for sm in s.matchers) for m in wanted):
                out.append(s.to_json(now))
        return JSONResponse(out)

    @app.post("/api/v2/silences", summary="Create or update a silence (Alertmanager v2)")
    async def post_silence(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            spec = silence_from_json(body)
            silence = silences.put(spec)
        except json.JSONDecodeError as exc:
            return JSONResponse(f"body is not JSON: {exc}", status_code=400)
        except SilenceNotFound as exc:
            return JSONResponse(f"silence not found: {exc.args[0]}", status_code=404)
        except (SilenceError, MatcherError, ValueError, TypeError) as exc:
            return JSONResponse(str(exc), status_code=400)
        return JSONResponse({"silenceID": silence.id})

    @app.get("/api/v2/silence/{silence_id}", summary="One silence (Alertmanager v2)")
    def get_silence(silence_id: str) -> Response:
        try:
            return JSONResponse(silences.get(silence_id).to_json(time.time()))
        except SilenceNotFound:
            return JSONResponse(f"silence {silence_id} not found", status_code=404)

    @app.delete("/api/v2/silence/{silence_id}", summary="Expire a silence (Alertmanager v2)")
    def delete_silence(silence_id: str) -> Response:
        try:
            silences.expire(silence_id)
        except SilenceNotFound:
            return JSONResponse(f"silence {silence_id} not found", status_code=404)
        except SilenceError as exc:
            return JSONResponse(str(exc), status_code=400)
        return Response(status_code=200)

    @app.post("/-/reload", summary="Re-read the rule files; state of unchanged rules is kept")
    def reload() -> Response:
        try:
            service.reload()
        except ReloadError as exc:
            # Prometheus answers 500 with the reason as text; the old rules keep running.
            return PlainTextResponse(f"failed to reload config: {exc}\n", status_code=500)
        return Response(status_code=200)

    @app.get("/-/healthy", summary="Liveness")
    def healthy() -> Response:
        return PlainTextResponse("Observatory alerting is Healthy.\n")

    @app.get("/-/ready", summary="Readiness")
    def ready() -> Response:
        return PlainTextResponse("Observatory alerting is Ready.\n")

    @app.get("/metrics", summary="The service's own metrics")
    def metrics() -> Response:
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    return app
