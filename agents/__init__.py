"""Observatory agents: one call instruments a service with traces, logs, RED metrics, pushed metrics and discovery."""
