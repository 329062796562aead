"""Webhooks: an account's fill and breaker events POSTed as signed JSON to URLs it registered.

**Registration** (:meth:`WebhookDispatcher.register`): the URL must be ``https``, or ``http`` to a host in
the allowlist (``webhook_allowlist``: host names or IP networks, for tests and loopback receivers); it
is checked by the gateway's SSRF guard, which resolves the host and refuses a private, loopback,
link-local or otherwise non-public address unless allowlisted. An account has at most
:data:`MAX_PER_ACCOUNT` webhooks. Each gets a signing secret (``whsec_…``), shown once.

**Delivery.** The engine's listener (:meth:`WebhookDispatcher.on_event`) only puts a delivery on a
bounded queue (:data:`QUEUE_SIZE`; when it is full the delivery is dropped and logged), so order
handling never waits on a receiver. :data:`WORKERS` background tasks POST each one through
:class:`GuardedTransport` (every connection is vetted and pinned to the vetted address again, so a
name that changes its answer after registration is still refused), with a short timeout, no
redirects followed (a 3xx is a failure), and retry a failed attempt (a non-2xx status, a timeout, a
refused connection) after each of ``retry_delays`` (0.5, 2 and 5 s), then give up. A webhook deleted
while a delivery waits is not called. Bodies are at most :data:`MAX_BODY_BYTES`; the receiver's
answer body is never read.

**Signature.** ``X-NX-Webhook-Signature: t=<ms>,v1=<hex>`` where ``hex = HMAC-SHA256(secret,
t + "." + body)`` over the exact body bytes, ``t`` the wall-clock send time in ms (a new one on every
attempt). ``X-NX-Webhook-Id`` names the webhook and ``X-NX-Event-Id`` the event (the same across
retries, so a receiver can drop duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from a2a_gateway.errors import OutboundRefused
from a2a_gateway.outbound.ssrf import GuardedTransport, Resolver, SsrfGuard
from agents_examples.trading.exchange.api.jsonenc import dumps
from agents_examples.trading.exchange.engine import BreakerEvent, Event, Fill
from agents_examples.trading.exchange.store import AccountStore, WebhookRecord

log = logging.getLogger(__name__)

EVENTS: Final = ("fill", "breaker")
MAX_PER_ACCOUNT: Final = 5
MAX_URL: Final = 2048
MAX_BODY_BYTES: Final = 16 * 1024
QUEUE_SIZE: Final = 1000
WORKERS: Final = 4
TIMEOUT_S: Final = 5.0
RETRY_DELAYS_S: Final = (0.5, 2.0, 5.0)
SIGNATURE_HEADER: Final = "X-NX-Webhook-Signature"
WEBHOOK_ID_HEADER: Final = "X-NX-Webhook-Id"
EVENT_ID_HEADER: Final = "X-NX-Event-Id"


class WebhookError(Exception):
    """A registration refused: a stable code and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sign(secret: str, t_ms: int, body: bytes) -> str:
    """The ``X-NX-Webhook-Signature`` value for ``body`` sent at ``t_ms``."""
    mac = hmac.new(secret.encode(), str(t_ms).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t_ms},v1={mac}"


def event_doc(event: Event) -> dict[str, Any] | None:
    """What a webhook receives for an engine event, or None for events webhooks do not carry."""
    event_id = "evt_" + secrets.token_hex(12)
    if isinstance(event, Fill):
        data: dict[str, Any] = dict(event.trade)
    elif isinstance(event, BreakerEvent):
        data = {
            "state": event.state,
            "code": event.code,
            "limit": event.limit,
            "loss": event.loss,
            "untilMs": event.until_ms,
        }
    else:
        return None
    return {
        "id": event_id,
        "type": event.type,
        "accountId": event.account_id,
        "timestamp": event.ts_ms,
        "data": data,
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook."""

    webhook_id: str
    event_id: str
    body: bytes


class WebhookDispatcher:
    """Registered webhooks (kept in the accounts store) and their background delivery."""

    def __init__(
        self,
        store: AccountStore,
        *,
        allowlist: Iterable[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
        timeout_s: float = TIMEOUT_S,
        queue_size: int = QUEUE_SIZE,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.store = store
        self._allow = tuple(a.strip() for a in allowlist if a.strip())
        self.guard = SsrfGuard(self._allow, resolver=resolver)
        self._transport = transport
        self.retry_delays = tuple(retry_delays)
        self.timeout_s = timeout_s
        self.wall_ms = wall_ms
        self._hooks: dict[str, WebhookRecord] = {h.id: h for h in store.webhooks()}
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=queue_size)
        self._client: httpx.AsyncClient | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.given_up = 0

    # ------------------------------------------------------------------------- registration

    def _http_allowed(self, host: str) -> bool:
        host = host.strip().lower().rstrip(".")
        for entry in self._allow:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if entry.lower().rstrip(".") == host:
                    return True
                continue
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(host) in network:
                    return True
        return False

    async def register(self, account_id: str, url: object, events: object = None) -> WebhookRecord:
        """Add a webhook for ``account_id`` (see the module doc); raises :class:`WebhookError`."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL:
            raise WebhookError("INVALID_REQUEST", f"url must be a string of 1..{MAX_URL} characters")
        chosen = list(EVENTS) if events is None else events
        if (
            not isinstance(chosen, list)
            or not chosen
            or not all(isinstance(e, str) and e in EVENTS for e in chosen)
        ):
            raise WebhookError("INVALID_REQUEST", f"events must be a non-empty list of: {', '.join(EVENTS)}")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise WebhookError("INVALID_WEBHOOK_URL", "url is not a valid URL") from None
        host = parsed.host
        if parsed.scheme != "https" and not (parsed.scheme == "http" and self._http_allowed(host)):
            raise WebhookError("INVALID_WEBHOOK_URL", "url must be https (http only to an allowlisted host)")
        if parsed.userinfo:
            raise WebhookError("INVALID_WEBHOOK_URL", "url must not carry credentials")
        if len(self.list(account_id)) >= MAX_PER_ACCOUNT:
            raise WebhookError("TOO_MANY_WEBHOOKS", f"an account has at most {MAX_PER_ACCOUNT} webhooks")
        try:
            await self.guard.check(url)
        except OutboundRefused as error:
            raise WebhookError("WEBHOOK_URL_REFUSED", f"url refused: {error}") from None
        record = WebhookRecord(
            id="wh_" + secrets.token_hex(12),
            account_id=account_id,
            url=url,
            events=tuple(dict.fromkeys(chosen)),
            secret="whsec_" + secrets.token_urlsafe(32),
            created_ms=self.wall_ms(),
        )
        self.store.add_webhook(record)
        self._hooks[record.id] = record
        log.info("webhook %s registered for %s", record.id, account_id)
        return record

    def list(self, account_id: str) -> list[WebhookRecord]:
        """An account's webhooks, oldest first."""
        return [h for h in self._hooks.values() if h.account_id == account_id]

    def delete(self, account_id: str, webhook_id: str) -> bool:
        """Remove an account's webhook (deliveries waiting for it are dropped); False if unknown."""
        hook = self._hooks.get(webhook_id)
        if hook is None or hook.account_id != account_id:
            return False
        del self._hooks[webhook_id]
        self.store.delete_webhook(account_id, webhook_id)
        return True

    # ----------------------------------------------------------------------------- delivery

    def on_event(self, event: Event) -> None:
        """The engine's listener: queue the event for the account's webhooks; never waits."""
        hooks = [
            h for h in self._hooks.values() if h.account_id == event.account_id and event.type in h.events
        ]
        if not hooks:
            return
        doc = event_doc(event)
        if doc is None:
            return
        body = dumps(doc)
        if len(body) > MAX_BODY_BYTES:
            log.warning("webhook event %s is %d bytes, past the limit; not sent", doc["id"], len(body))
            return
        for hook in hooks:
            try:
                self._queue.put_nowait(Delivery(hook.id, doc["id"], body))
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("webhook queue full: event %s for %s dropped", doc["id"], hook.id)

    async def _attempt(self, client: httpx.AsyncClient, hook: WebhookRecord, delivery: Delivery) -> bool:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(hook.secret, self.wall_ms(), delivery.body),
            WEBHOOK_ID_HEADER: hook.id,
            EVENT_ID_HEADER: delivery.event_id,
        }
        try:
            async with client.stream("POST", hook.url, content=delivery.body, headers=headers) as response:
                ok = 200 <= response.status_code < 300
                if not ok:
                    log.info("webhook %s answered %d", hook.id, response.status_code)
                return ok
        except OutboundRefused as error:
            log.warning("webhook %s refused by the SSRF guard: %s", hook.id, error)
        except httpx.HTTPError as error:
            log.info("webhook %s failed: %s", hook.id, type(error).__name__)
        return False

    async def _deliver(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        for attempt in range(len(self.retry_delays) + 1):
            hook = self._hooks.get(delivery.webhook_id)
            if hook is None:  # deleted meanwhile
                return
            if await self._attempt(client, hook, delivery):
                return
            if attempt < len(self.retry_delays):
                await asyncio.sleep(self.retry_delays[attempt])
        self.given_up += 1
        log.warning("webhook %s: event %s given up", delivery.webhook_id, delivery.event_id)

    async def _work(self, client: httpx.AsyncClient) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self._deliver(client, delivery)
            except Exception:
                log.exception("webhook delivery failed unexpectedly")
            finally:
                self._queue.task_done()

    async def start(self) -> None:
        """Start the delivery workers."""
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(self.guard, self._transport),
            timeout=self.timeout_s,
            follow_redirects=False,
        )
        self._workers = [asyncio.create_task(self._work(self._client)) for _ in range(WORKERS)]

    async def idle(self) -> None:
        """Wait until every queued delivery is done (delivered, given up or dropped)."""
        await self._queue.join()

    async def stop(self) -> None:
        """Stop the workers (deliveries still queued are dropped) and close the client."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
