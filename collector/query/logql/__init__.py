"""LogQL: the subset of Loki's query language that Grafana's Loki datasource needs (see PROTOCOLS.md §5)."""
