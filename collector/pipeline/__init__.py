"""Between receivers and the store: admission limits, group commit, stateful conversions."""
