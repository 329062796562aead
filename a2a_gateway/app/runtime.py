"""What starts with an app and stops with it, in order, and the Starlette app around the routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from a2a_gateway.api.errors import http_exception_handlers
from a2a_gateway.api.health import Drain
from a2a_gateway.api.middleware import RequestLogMiddleware
from a2a_gateway.app.building import Core
from a2a_gateway.app.cluster import Cluster
from a2a_gateway.outbound.gateway_registrar import GatewayRegistrar
from a2a_gateway.outbound.health_prober import HealthProber
from a2a_gateway.routing.deadlines import Deadlines
from a2a_gateway.routing.service import Router
from a2a_gateway.storage import engine as db
from a2a_gateway.tasks.service import TaskService
from a2a_gateway.workflows.service import WorkflowService

log = logging.getLogger(__name__)

PING_SECONDS = 15.0  # an idle stream gets a keep-alive comment this often


class Job(Protocol):
    """Background work that starts with the app and stops with it."""

    async def start(self) -> None:
        """Begin."""
        ...

    async def close(self) -> None:
        """Stop, waiting for work in flight."""
        ...


@dataclass(slots=True)
class Runtime:
    """Background work of an app: the gateway has a router, deadlines and maybe a prober; a kit agent
    may have a registrar."""

    core: Core
    service: TaskService
    router: Router | None = None
    deadlines: Deadlines | None = None
    registrar: GatewayRegistrar | None = None
    prober: HealthProber | None = None
    # Stores with connections of their own (the ledger's), closed after the task store.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)  # periodic work (the hold sweeper), started last
    # Drives workflow runs: started once tasks are back, stopped before anything else, so no run reads
    # the shutdown of its steps' tasks as their end.
    workflows: Job | None = None
    # One of several processes on one PostgreSQL and Redis: membership, takeover, forwarded cancels.
    cluster: Cluster | None = None
    workflow_service: WorkflowService | None = None  # what forwarded run requests act on
    _keepalive: asyncio.Task[None] | None = None

    def bind_cluster(self) -> None:
        """Point the cluster's takeovers and forwarded cancels at this runtime's service and router."""
        if self.cluster is not None:
            self.cluster.bind(self.service, self.router, self.workflow_service)

    async def start(self) -> None:
        """Migrate, resume relayed tasks and fail other tasks left in flight, start background work."""
        if self.core.migrate:
            await db.upgrade(self.core.engine)
        # The key ring first: a pepper that cannot decrypt the stored keys stops the start here, with its
        # reason, rather than failing every login later.
        await self.core.ring.load()
        if self.cluster is not None:
            # Other processes may be running tasks: only those of stopped processes are taken over.
            self.bind_cluster()
            taken = await self.cluster.start()
            if taken:
                log.info("took over %d tasks of stopped gateway processes", taken)
        elif self.router is not None:
            resumed, failed = await self.router.recover(self.service)
            if resumed:
                log.info("resumed %d relayed tasks after a restart", resumed)
            if failed:
                log.warning("marked %d in-flight tasks failed after a restart", failed)
        else:
            failed = await self.service.recover()
            if failed:
                log.warning("marked %d in-flight tasks failed after a restart", failed)
        await self.core.delivery.start()
        if self.registrar is not None:
            await self.registrar.start()
        if self.prober is not None:
            await self.prober.start()
        for job in self.jobs:
            await job.start()
        if self.workflows is not None:
            await self.workflows.start()
        self._keepalive = asyncio.create_task(self._ping_streams())
        service = self.service
        self.core.metrics.slow_drops = lambda: service.dropped_streams
        # Start-up objects (modules, tables, compiled statements) never die: moving them out of the
        # collector's view keeps full collections short, which trims the latency tail under load.
        gc.collect()
        gc.freeze()

    async def _ping_streams(self) -> None:
        """One timer for every stream's keep-alive."""
        while True:
            await asyncio.sleep(PING_SECONDS)
            self.service.ping_streams()

    async def stop(self) -> None:
        """End tasks and streams, drain deliveries and writes, close connections."""
        core = self.core
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None
        if self.cluster is not None:
            await self.cluster.quiesce()
        if self.workflows is not None:
            await self.workflows.close()
        if self.registrar is not None:
            await self.registrar.close()
        if self.prober is not None:
            await self.prober.close()
        if self.deadlines is not None:
            await self.deadlines.close()
        if self.router is not None:
            await self.router.close()
        await self.service.shutdown()
        if self.router is not None:
            await self.router.release()
        # Jobs stop after the last calls have ended: a trust pass still sees their evidence.
        for job in self.jobs:
            await job.close()
        await core.delivery.close()
        await core.repo.close()
        if core.bus is not None:
            await core.bus.close()
        if self.cluster is not None:
            await self.cluster.close()
        for close in self.closers:
            await close()
        await core.client.aclose()
        if core.redis is not None:
            await core.redis.aclose()
        await core.engine.dispose()


def assemble(runtime: Runtime, routes: list[BaseRoute]) -> Starlette:
    """The Starlette app: the routes, the request log, the runtime in its lifespan, and the drain the
    server starts when it begins to stop (``app.state.drain``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await runtime.start()
        except BaseException:
            # A start that fails half-way (a migration, recovery) still closes what it opened.
            try:
                await runtime.stop()
            except Exception:
                log.exception("stopping after a failed start failed too")
            raise
        try:
            yield
        finally:
            await runtime.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RequestLogMiddleware, metrics=runtime.core.metrics)],
        exception_handlers=http_exception_handlers(),
    )
    app.state.service = runtime.service
    app.state.drain = Drain()
    return app
