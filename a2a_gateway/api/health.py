"""Health routes: liveness, readiness (database reachable), and the NEXUS-shaped /api/v1/health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.protocol.base import format_timestamp, utc_now

Probe = Callable[[], Awaitable[bool]]


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
        """GET /health/ready: the database answers."""
        ok = await self._ready()
        return _json({"status": "ready" if ok else "not ready"}, 200 if ok else 503)

    async def api_health(self, request: Request) -> Response:
        """GET /api/v1/health in the NEXUS response shape."""
        ok = await self._ready()
        body = {"data": {"status": "ok" if ok else "degraded", "timestamp": format_timestamp(utc_now())}}
        return _json(body, 200 if ok else 503)
