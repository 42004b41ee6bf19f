"""Observatory collector: receives traces, logs and metrics, stores them in ClickHouse, answers queries."""

__version__ = "0.1.0"
