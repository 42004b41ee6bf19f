"""The evaluator's own metrics, with Prometheus' rule manager names (rules/manager.go) and labels.

Registered on the CollectorRegistry the composition root passes in (never the global one); per-group
series are labelled rule_group="<file>;<name>", Prometheus' group key.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary


class RuleMetrics:
    """Prometheus' rule manager metrics (rules/manager.go), labelled by rule_group = "<file>;<name>"."""

    def __init__(self, registry: CollectorRegistry) -> None:
        g = ["rule_group"]
        self.eval_duration = Summary(
            "prometheus_rule_evaluation_duration_seconds", "The duration for a rule to execute.", registry=registry
        )
        self.group_duration = Summary(
            "prometheus_rule_group_duration_seconds", "The duration of rule group evaluations.", registry=registry
        )
        self.evals = Counter(
            "prometheus_rule_evaluations_total", "The total number of rule evaluations.", g, registry=registry
        )
        self.failures = Counter(
            "prometheus_rule_evaluation_failures_total",
            "The total number of rule evaluation failures.",
            g,
            registry=registry,
        )
        self.missed = Counter(
            "prometheus_rule_group_iterations_missed_total",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            g,
            registry=registry,
        )
        self.scheduled = Counter(
            "prometheus_rule_group_iterations_total",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
            g,
            registry=registry,
        )
        self.last_eval = Gauge(
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds.",
            g,
            registry=registry,
        )
        self.last_duration = Gauge(
            "prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
            g,
            registry=registry,
        )
        self.interval = Gauge(
            "prometheus_rule_group_interval_seconds", "The interval of a rule group.", g, registry=registry
        )
        self.rules = Gauge("prometheus_rule_group_rules", "The number of rules.", g, registry=registry)
        self.samples = Gauge(
            "prometheus_rule_group_last_evaluation_samples",
            "The number of samples returned during the last rule group evaluation.",
            g,
            registry=registry,
        )

    def forget(self, key: str) -> None:
        for metric in (
            self.evals,
            self.failures,
            self.missed,
            self.scheduled,
            self.last_eval,
            self.last_duration,
            self.interval,
            self.rules,
            self.samples,
        ):
            with contextlib.suppress(KeyError):
                metric.remove(key)
