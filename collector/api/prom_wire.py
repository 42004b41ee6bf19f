"""The Prometheus HTTP API's wire format: the envelope, error types and their HTTP statuses, values.

Sample values are strings as Go's strconv.FormatFloat(v, 'f', -1, 64) writes them ("1", "0.5", "NaN",
"+Inf"); times are Unix seconds, a JSON number with at most millisecond digits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi.responses import Response

from collector.query.promql.values import QueryResult

# errorType -> HTTP status, as Prometheus' respondError maps them (an unknown type answers 500).
# `unavailable` is ours for a store that cannot answer right now: 503 with Retry-After, retryable.
STATUS = {
    "bad_data": 400,
    "execution": 422,
    "canceled": 499,
    "timeout": 503,
    "internal": 500,
    "not_found": 404,
    "not_acceptable": 406,
    "unavailable": 503,
}
RETRY_AFTER_S = 1


class ApiError(Exception):
    """A request the API answers with an error envelope; `error_type` is Prometheus' errorType."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class PromJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def success(data: Any, warnings: list[str] | None = None, infos: list[str] | None = None) -> PromJSON:
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = warnings
    if infos:
        body["infos"] = infos
    return PromJSON(body)


def error(error_type: str, message: str) -> PromJSON:
    status = STATUS.get(error_type, 500)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if error_type == "unavailable" else None
    return PromJSON({"status": "error", "errorType": error_type, "error": message}, status, headers)


def format_value(v: float) -> str:
    """Go's FormatFloat(v, 'f', -1, 64): the shortest digits that read back as v, never an exponent."""
    return format_values([v])[0]


_EXPONENT = re.compile(r"[-+]?\d+(?:\.\d+)?e[-+]\d+")


def format_values(values: Sequence[float] | npt.NDArray[np.float64]) -> list[str]:
    """format_value of many values at once: Python's repr of the whole list (C speed), then fixed up to Go's
    text (`1.0` -> `1`, `nan` -> `NaN`, `inf` -> `+Inf`, exponents written out) with string-wide replaces."""
    floats = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if not floats:
        return []
    text = repr(floats)[1:-1] + ","
    text = text.replace(".0,", ",").replace("nan", "NaN").replace("-inf", "-Inf").replace("inf", "+Inf")
    if "e" in text:
        text = _EXPONENT.sub(lambda m: format(Decimal(m.group()), "f"), text)
    return text[:-1].split(", ")


def format_time(ms: int) -> int | float:
    """Unix seconds as Prometheus writes them: an integer when whole, else with the milliseconds."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def format_times(ms: npt.NDArray[np.int64]) -> list[str]:
    """format_time of many timestamps at once, as JSON number text."""
    if ms.size and not (ms % 1000).any():
        return repr((ms // 1000).tolist())[1:-1].split(", ")
    return [repr(format_time(t)) for t in ms.tolist()]


def _labels_json(labels: dict[str, str]) -> str:
    return json.dumps(labels, ensure_ascii=False, separators=(",", ":"))


def result_json(result: QueryResult) -> str:
    """`data` of a query answer as JSON text: {"resultType", "result"} in the shape of the result's type.

    Written directly rather than through json.dumps of nested lists: a range query over many series has
    millions of points, and this is several times faster. Values and times need no JSON escaping."""
    kind = result.result_type
    if kind == "matrix":
        parts = []
        grid: npt.NDArray[np.int64] | None = None
        times: list[str] = []
        for s in result.matrix:
            if grid is None or not np.array_equal(grid, s.timestamps):  # series mostly share the step grid
                grid, times = s.timestamps, format_times(s.timestamps)
            points = ",".join(map('[{},"{}"]'.format, times, format_values(s.values)))
            parts.append(f'{{"metric":{_labels_json(s.labels)},"values":[{points}]}}')
        body = "[" + ",".join(parts) + "]"
    elif kind == "vector":
        values = format_values([s.value for s in result.vector])
        body = (
            "["
            + ",".join(
                f'{{"metric":{_labels_json(s.labels)},"value":[{format_time(s.timestamp_ms)!r},"{v}"]}}'
                for s, v in zip(result.vector, values, strict=True)
            )
            + "]"
        )
    elif kind == "scalar":
        assert result.scalar is not None
        body = f'[{format_time(result.scalar[0])!r},"{format_value(result.scalar[1])}"]'
    else:
        assert result.string is not None
        body = f"[{format_time(result.string[0])!r},{json.dumps(result.string[1], ensure_ascii=False)}]"
    return f'{{"resultType":"{kind}","result":{body}}}'


def query_success(result: QueryResult) -> Response:
    """The success envelope of a query, with the result's warnings and infos."""
    extra = "".join(
        f',"{key}":{json.dumps(items, ensure_ascii=False)}'
        for key, items in (("warnings", result.warnings), ("infos", result.infos))
        if items
    )
    body = f'{{"status":"success","data":{result_json(result)}{extra}}}'
    return Response(body.encode(), media_type="application/json")
