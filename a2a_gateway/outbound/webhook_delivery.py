"""Push-notification delivery: ordered per destination, retried with backoff, never blocking the caller."""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import orjson

from a2a_gateway.errors import OutboundRefused
from a2a_gateway.protocol import v1

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
_RETRY_STATUSES = frozenset({408, 429})
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, TimeoutError)


class _Outcome(enum.Enum):
    DONE = "done"
    RETRY = "retry"
    GIVE_UP = "give-up"


@dataclass(frozen=True, slots=True)
class _Job:
    """One event for one webhook, snapshotted at enqueue time so later mutations cannot leak in."""

    url: str
    headers: dict[str, str]
    body: bytes
    label: str  # origin + task + config: safe to log, unlike the full URL (paths may hold secrets)


def push_headers(config: v1.TaskPushNotificationConfig) -> dict[str, str]:
    """Headers of a delivery; Authorization is sent only when credentials are present."""
    headers = {"Content-Type": "application/a2a+json"}
    auth = config.authentication
    # A scheme without credentials ("Bearer" alone) authenticates nothing, so no header is sent then.
    if auth is not None and auth.credentials:
        headers["Authorization"] = f"{auth.scheme} {auth.credentials}"
    if config.token:
        headers["X-A2A-Notification-Token"] = config.token
    return headers


def _event_task_id(event: v1.StreamResponse) -> str:
    if event.task is not None:
        return event.task.id
    if event.status_update is not None:
        return event.status_update.task_id
    if event.artifact_update is not None:
        return event.artifact_update.task_id
    return (event.message.task_id if event.message is not None else None) or ""


def _origin(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"
    port = f":{parsed.port}" if parsed.port else ""
    host = parsed.host if ":" not in parsed.host else f"[{parsed.host}]"
    return f"{parsed.scheme}://{host}{port}"


class WebhookDelivery:
    """Delivers task events to push-notification webhooks through one shared, SSRF-guarded client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        timeout: float = 10.0,
        max_attempts: int = 5,
        base_backoff: float = 0.5,
        max_backoff: float = 30.0,
        queue_limit: int = 1000,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._queue_limit = queue_limit
        self._sleep = sleep
        self._queues: dict[tuple[str, str], deque[_Job]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._accepting = False
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self.dropped = 0

    async def start(self) -> None:
        """Begin accepting events."""
        self._accepting = True

    def enqueue(self, config: v1.TaskPushNotificationConfig, event: v1.StreamResponse) -> None:
        """Queue one event for one webhook; returns at once and never raises for delivery problems."""
        try:
            task_id = config.task_id or _event_task_id(event)
            key = (task_id, config.id or config.url)
            job = _Job(
                config.url,
                push_headers(config),
                orjson.dumps(event.wire()),
                f"{_origin(config.url)} task={task_id} config={config.id or '-'}",
            )
        except Exception as exc:
            # Only the type: the message of a serialisation error may quote header or body values.
            logger.warning("webhook event could not be prepared (%s); dropped", type(exc).__name__)
            self.failed += 1
            return
        if not self._accepting:
            logger.warning("webhook delivery is not running; dropped event for %s", job.label)
            self.dropped += 1
            return
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= self._queue_limit:
            queue.popleft()
            self.dropped += 1
            logger.warning(
                "webhook queue full (%d); dropped oldest event for %s", self._queue_limit, job.label
            )
        queue.append(job)
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._drain(key))

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, give queued events drain_timeout seconds, then cancel the rest."""
        self._accepting = False
        workers = list(self._workers.values())
        pending: set[asyncio.Task[None]] = set()
        if workers:
            _, pending = await asyncio.wait(workers, timeout=drain_timeout)
            for worker in pending:
                worker.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Each cancelled worker was holding one in-flight event besides what is still queued.
        left = len(pending) + sum(len(q) for q in self._queues.values())
        if left:
            logger.warning("webhook delivery closed with %d undelivered events", left)
            self.dropped += left
        self._queues.clear()
        self._workers.clear()

    async def _drain(self, key: tuple[str, str]) -> None:
        # One worker per destination: a later event waits for an earlier one's retries, keeping order.
        queue = self._queues[key]
        try:
            while queue:
                await self._deliver(queue.popleft())
        finally:
            # The worker exits when idle so finished tasks do not leave workers behind.
            self._workers.pop(key, None)
            if not queue:
                self._queues.pop(key, None)

    async def _deliver(self, job: _Job) -> None:
        for attempt in range(1, self._max_attempts + 1):
            outcome, delay = await self._attempt(job)
            if outcome is _Outcome.DONE:
                self.delivered += 1
                return
            if outcome is _Outcome.GIVE_UP or attempt == self._max_attempts:
                self.failed += 1
                logger.warning("webhook delivery to %s failed after %d attempt(s)", job.label, attempt)
                return
            self.retried += 1
            await self._sleep(max(delay or 0.0, self._backoff(attempt)))

    async def _attempt(self, job: _Job) -> tuple[_Outcome, float | None]:
        try:
            async with asyncio.timeout(self._timeout):
                # Streaming without reading the body: a receiver cannot make us buffer a huge reply.
                request = self._client.stream(
                    "POST", job.url, content=job.body, headers=job.headers, timeout=self._timeout
                )
                async with request as response:
                    status, retry_after = response.status_code, response.headers.get("Retry-After")
        except OutboundRefused as exc:
            logger.warning("webhook to %s refused: %s", job.label, exc.message)
            return _Outcome.GIVE_UP, None
        except _RETRY_ERRORS as exc:
            logger.info("webhook to %s unreachable (%s); will retry", job.label, type(exc).__name__)
            return _Outcome.RETRY, None
        except Exception as exc:
            # Exception text may echo headers or the URL, so only the type is logged.
            logger.warning("webhook to %s failed with %s", job.label, type(exc).__name__)
            return _Outcome.GIVE_UP, None
        if 200 <= status < 300:
            return _Outcome.DONE, None
        if status >= 500 or status in _RETRY_STATUSES:
            logger.info("webhook to %s answered %d; will retry", job.label, status)
            return _Outcome.RETRY, self._retry_after(retry_after)
        logger.warning("webhook to %s answered %d; giving up", job.label, status)
        return _Outcome.GIVE_UP, None

    def _backoff(self, attempt: int) -> float:
        delay = min(self._max_backoff, self._base_backoff * 2.0 ** (attempt - 1))
        # Jitter keeps many webhooks that failed together from retrying in lockstep.
        return min(self._max_backoff, delay * random.uniform(1.0, 1.1))

    def _retry_after(self, value: str | None) -> float | None:
        if value is None or not value.strip().isdigit():
            return None
        return min(float(value.strip()), self._max_backoff)
