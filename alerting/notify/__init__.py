"""Notification of alerts: routing, grouping, silences, inhibition, flapping holds and delivery to receivers.

Alertmanager's behaviour is the reference (dispatch, dedup through a notification log, inhibition, silences),
with Kapacitor's "state changes only" as the default repeat interval. `Dispatcher` is the entry point: it
implements `alerting.model.Notifier`.
"""
