"""Query engines over the store: PromQL (and, later, the LogQL subset, trace search, correlation)."""
