"""Demo service: discovery."""
