"""Demo service: demo_common."""
