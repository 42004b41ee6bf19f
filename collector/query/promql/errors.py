"""PromQL errors with Prometheus' error types (the HTTP API maps each type to a status code)."""

from __future__ import annotations

from typing import Literal

ErrorType = Literal["bad_data", "execution", "timeout", "canceled", "internal"]


class PromQLError(Exception):
    """A query that could not be parsed or evaluated; `error_type` is Prometheus' errorType string."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.error_type: ErrorType = error_type
        self.message = message

    def __str__(self) -> str:
        return self.message


def bad_data(message: str) -> PromQLError:
    return PromQLError("bad_data", message)


def execution(message: str) -> PromQLError:
    return PromQLError("execution", message)


SAME_LABELSET = "vector cannot contain metrics with the same labelset"
TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"
