"""Demo service: gateway."""
