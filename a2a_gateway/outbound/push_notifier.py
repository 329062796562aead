"""The tasks.ports.PushNotifier adapter: the SSRF guard checks URLs, WebhookDelivery sends events."""

from __future__ import annotations

from a2a_gateway.outbound.ssrf import SsrfGuard
from a2a_gateway.outbound.webhook_delivery import WebhookDelivery
from a2a_gateway.protocol import v1


class WebhookNotifier:
    """Checks webhook URLs up front and hands events to the background delivery."""

    def __init__(self, guard: SsrfGuard, delivery: WebhookDelivery) -> None:
        self._guard = guard
        self.delivery = delivery

    async def check_url(self, url: str) -> None:
        """Raise OutboundRefused for a URL the gateway must not call."""
        await self._guard.check(url)

    def enqueue(self, config: v1.TaskPushNotificationConfig, event: v1.StreamResponse) -> None:
        """Deliver in the background; never raises for delivery problems."""
        self.delivery.enqueue(config, event)
