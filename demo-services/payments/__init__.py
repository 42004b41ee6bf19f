"""Demo service: payments."""
