"""Demo service: orders."""
