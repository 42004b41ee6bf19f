"""The webhook integration: POSTs the Alertmanager version-4 JSON message, or a receiver's Jinja2 body."""

from __future__ import annotations

import json
from typing import Any

import jinja2

from alerting.notify.config import WebhookConfig, jinja_environment
from alerting.notify.delivery import Delivery, HttpNotification
from alerting.notify.integration import GroupNotification
from alerting.notify.payload import webhook_message


class WebhookIntegration:
    kind = "webhook"

    def __init__(self, config: WebhookConfig, index: int, external_url: str, delivery: Delivery) -> None:
        self.config, self.external_url, self._delivery = config, external_url, delivery
        self.name = f"webhook/{index}"
        # Compiled once; the config loader already rejected syntax errors and unknown names.
        self._template = jinja_environment().from_string(config.body_template) if config.body_template else None

    @property
    def send_resolved(self) -> bool:
        return self.config.send_resolved

    def render(self, n: GroupNotification) -> tuple[bytes, Any]:
        """The request body and what the dead-letter log keeps of it (the JSON object, or the rendered text)."""
        message = webhook_message(
            receiver=n.receiver,
            group_key=n.group_key,
            group_labels=n.group_labels,
            alerts=n.alerts,
            external_url=self.external_url,
            max_alerts=self.config.max_alerts,
        )
        if self._template is None:
            return json.dumps(message).encode(), message
        text = self._template.render(**message)
        return text.encode(), text

    def send(self, n: GroupNotification) -> bool:
        try:
            body, payload = self.render(n)
        except jinja2.TemplateError as e:
            # StrictUndefined: e.g. a label the template expects is missing on this alert. Not retryable.
            message = webhook_message(
                receiver=n.receiver,
                group_key=n.group_key,
                group_labels=n.group_labels,
                alerts=n.alerts,
                external_url=self.external_url,
                max_alerts=self.config.max_alerts,
            )
            self._delivery.give_up(n.receiver, self.kind, message, f"body_template failed: {type(e).__name__}: {e}")
            return False
        return self._delivery.post(
            HttpNotification(
                receiver=n.receiver,
                integration=self.kind,
                url=self.config.url,
                body=body,
                payload=payload,
                timeout_s=self.config.timeout,
                headers=self.config.headers,
            )
        )
