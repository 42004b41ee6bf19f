"""Demo service: loadgen."""
