"""Demo service: inventory."""
