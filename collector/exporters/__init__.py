"""Forwarders to InfluxDB, Prometheus remote write and OTLP, sharing a bounded, disk-backed retry queue."""
