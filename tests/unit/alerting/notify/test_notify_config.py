"""The notification config: defaults, inheritance-ready route options, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from alerting.notify.config import NotifyConfigError, build_notify_config, parse_duration

BASE: dict[str, Any] = {
    "receivers": [{"name": "ops", "webhook_configs": [{"url": "http://127.0.0.1:9/hook"}]}],
    "route": {"receiver": "ops"},
}


def with_(path: str, value: Any) -> dict[str, Any]:
    """BASE with one key set, `path` dotted (list indexes as numbers)."""
    import copy

    data = copy.deepcopy(BASE)
    node: Any = data
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    node[parts[-1]] = value
    return data


def test_defaults() -> None:
    c = build_notify_config(BASE)
    w = c.receivers[0].webhook_configs[0]
    assert (w.send_resolved, w.max_alerts, w.timeout, w.body_template, w.headers) == (True, 0, 10.0, None, {})
    assert c.route.group_wait is None and c.route.repeat_interval is None  # filled in by the route tree
    assert (c.retry.initial_backoff, c.retry.max_attempts) == (0.5, 5)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("0", 0.0), (15, 15.0), ("2d", 172800.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("route.group_wait", "30x", "alerting.notify.route.group_wait: invalid duration '30x'"),
        ("route.receiver", "nobody", "alerting.notify.route.receiver: no receiver named 'nobody'"),
        ("route.routes", [{"receiver": "x"}], "alerting.notify.route.routes.0.receiver: no receiver named 'x'"),
        ("route.matchers", ['a="b"'], "route.matchers: the root route matches every alert"),
        ("route.routes", [{"matchers": ['a="b']}], "alerting.notify.route.routes.0.matchers: matcher 0: unterminated"),
        ("route.group_by", ["...", "a"], "alerting.notify.route.group_by: '...' (group by all labels) must be"),
        ("route.bogus", 1, "alerting.notify.route.bogus: Extra inputs are not permitted"),
        ("receivers.0.webhook_configs.0.url", "ftp://x", "alerting.notify.receivers.0.webhook_configs.0.url: expected"),
        (
            "receivers.0.webhook_configs.0.body_template",
            "{% for a in alerts %}",
            "alerting.notify.receivers.0.webhook_configs.0.body_template: template syntax error at line 1",
        ),
        (
            "receivers.0.webhook_configs.0.body_template",
            "{{ alertz | length }}",
            "body_template: template uses undefined name(s) alertz",
        ),
        ("receivers.0.webhook_configs.0.max_alerts", -1, "max_alerts: Input should be greater than or equal to 0"),
        ("retry.max_attempts", 0, "alerting.notify.retry.max_attempts"),
        (
            "inhibit_rules",
            [{"source_matchers": ["a=b"], "target_matchers": ["c=~("]}],
            "inhibit_rules.0.target_matchers",
        ),
    ],
)
def test_errors_name_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(NotifyConfigError) as e:
        build_notify_config(with_(path, value))
    assert message in str(e.value)


def test_duplicate_receivers() -> None:
    data = with_("receivers", [{"name": "a"}, {"name": "a"}])
    data["route"]["receiver"] = "a"
    with pytest.raises(NotifyConfigError, match="duplicate name"):
        build_notify_config(data)


def test_empty_means_a_log_receiver() -> None:
    c = build_notify_config({})
    assert [(r.name, r.log) for r in c.receivers] == [("log", True)] and c.route.receiver == "log"


def test_documented_example_is_valid() -> None:
    import yaml

    from alerting.notify import config as module

    assert module.__doc__ is not None
    text = module.__doc__.split("    alerting:\n", 1)[1]
    example = yaml.safe_load("alerting:\n" + "\n".join(line[4:] for line in text.splitlines()))
    c = build_notify_config(example["alerting"]["notify"])
    assert c.receivers[0].webhook_configs[0].headers == {"X-Team": "ops"} and c.inhibit_rules[0].equal == ("service",)


def test_config_is_frozen() -> None:
    c = build_notify_config(BASE)
    with pytest.raises(Exception, match="frozen"):
        setattr(c.route, "receiver", "x")  # noqa: B010 (the assignment must reach pydantic at run time)


def test_template_names_are_the_payload_fields() -> None:
    body = "{{ status }} {{ receiver }} {% for a in alerts %}{{ a.labels.alertname }}{% endfor %} {{ groupKey }}"
    c = build_notify_config(with_("receivers.0.webhook_configs.0.body_template", body))
    assert c.receivers[0].webhook_configs[0].body_template == body
