"""Alerting: Prometheus-format rules with Kapacitor-like behaviour, evaluated over the collector's HTTP API.

Dependencies point one way: `alerting` reaches the collector only over HTTP (the `QueryFunc` seam in
`alerting.model`), and imports nothing from `collector`.
"""
