"""Health routes: liveness, readiness (database reachable, not draining), and the NEXUS-shaped
/api/v1/health; and the drain that a stopping process is in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.protocol.base import format_timestamp, utc_now

Probe = Callable[[], Awaitable[bool]]
T = TypeVar("T")


class Drain:
    """Whether this process has begun to stop: from then on readiness answers ``503 draining`` and every
    open stream ends with a final frame telling its client where to reconnect.

    The server starts it when it stops listening (SIGTERM, SIGINT); unary calls in flight go on.
    """

    def __init__(self) -> None:
        self._draining = False
        # Futures of the loop each waiter runs on (an app may serve on more than one loop in its life,
        # as in tests, which an asyncio.Event made once would not allow).
        self._waiters: set[asyncio.Future[None]] = set()
        self._hooks: set[Callable[[], None]] = set()

    @property
    def draining(self) -> bool:
        """Whether the drain has started."""
        return self._draining

    def start(self) -> None:
        """Begin draining (idempotent)."""
        self._draining = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        for hook in list(self._hooks):
            hook()
        self._hooks.clear()

    def on_start(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Call ``hook`` when the drain starts (at once if it has); returns what unhooks it. A stream
        hooks itself here instead of keeping a task waiting for the drain."""
        if self._draining:
            hook()
            return _nothing
        self._hooks.add(hook)
        return lambda: self._hooks.discard(hook)

    async def wait(self) -> None:
        """Until the drain starts."""
        if self._draining:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)

    @staticmethod
    def of(request: Request) -> Drain:
        """The app's drain (``app.state.drain``); an app without one never drains."""
        drain = getattr(request.app.state, "drain", None)
        return drain if isinstance(drain, Drain) else Drain()

    async def until_started(self, source: AsyncIterator[T]) -> AsyncGenerator[T, None]:
        """The items of ``source`` until it ends or the drain starts, whichever is first; ``source`` is
        closed after."""
        stop = asyncio.ensure_future(self.wait())
        try:
            while not stop.done():
                step = asyncio.ensure_future(anext(source))
                await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()
                    await asyncio.wait({step})
                    if not step.cancelled():
                        step.exception()  # retrieved: the source's own end, of no interest now
                    return
                try:
                    item = step.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            stop.cancel()
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class HealthEndpoints:
    """The health routes of seed 000 and 002."""

    def __init__(self, database_ready: Probe) -> None:
        self._ready = database_ready

    async def health(self, request: Request) -> Response:
        """GET /health: overall status with the database check."""
        ok = await self._ready()
        checks = {"database": "ok" if ok else "unavailable"}
        return _json({"status": "ok" if ok else "degraded", "checks": checks}, 200 if ok else 503)

    async def live(self, request: Request) -> Response:
        """GET /health/live: the process answers."""
        return _json({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        """GET /health/ready: the database answers and the process is not draining."""
        if Drain.of(request).draining:
            return _json({"status": "draining"}, 503)
        ok = await self._ready()
        return _json({"status": "ready" if ok else "not ready"}, 200 if ok else 503)

    async def api_health(self, request: Request) -> Response:
        """GET /api/v1/health in the NEXUS response shape."""
        ok = await self._ready()
        body = {"data": {"status": "ok" if ok else "degraded", "timestamp": format_timestamp(utc_now())}}
        return _json(body, 200 if ok else 503)


def _nothing() -> None:
    """Unhooks nothing."""
