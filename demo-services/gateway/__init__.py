"""Demo service: gateway, the demo's single entry point (routing, balancing, breakers, retries, keys, limits)."""
