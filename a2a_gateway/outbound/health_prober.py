"""Active health checks: on an interval, each registered agent gets a real A2A call.

A probe fetches the agent's card and then makes a cheap JSON-RPC call (``GetTask`` of a task id that
cannot exist; any well-formed answer, even an error, means the agent serves A2A). The call carries a
caller assertion for no user and no task, so an agent that requires the gateway answers it too. The
result is stored on the agent and counted like a routed call, so an agent that stops answering turns
``degraded`` without anyone having to call it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx

from a2a_gateway.agent.caller import ANONYMOUS
from a2a_gateway.errors import GatewayError
from a2a_gateway.outbound.a2a_client import A2AClient
from a2a_gateway.outbound.card_fetcher import CARD_PATH, CardFetcher
from a2a_gateway.registry.models import Agent
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.routing.ports import AssertionIssuer

log = logging.getLogger(__name__)
CONCURRENCY = 8


def card_url_of(agent: Agent) -> str:
    """Where the agent's card is: the URL it was imported from, else the well-known path of its origin."""
    if agent.card_url:
        return agent.card_url
    return str(httpx.URL(agent.endpoint).copy_with(path=CARD_PATH, query=None, fragment=None))


class HealthProber:
    """Probes every registered agent every ``interval`` seconds, a few at a time."""

    def __init__(
        self,
        registry: RegistryService,
        cards: CardFetcher,
        a2a: A2AClient,
        interval: float,
        assertions: AssertionIssuer | None = None,
    ) -> None:
        self._registry = registry
        self._cards = cards
        self._a2a = a2a
        self._assertions = assertions
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin probing in the background."""
        self._task = asyncio.create_task(self._loop(), name="health-prober")

    async def close(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.probe_all()
            except Exception:
                log.exception("health probe round failed")

    async def probe_all(self) -> int:
        """Probe every agent once; returns how many answered."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(agent: Agent) -> bool:
            async with gate:
                return await self.probe(agent)

        results = await asyncio.gather(*(one(a) for a in await self._registry.all()))
        return sum(results)

    async def probe(self, agent: Agent) -> bool:
        """Probe one agent and record the outcome; True when it answered."""
        ok, latency = True, None
        try:
            assertion = await self._assertions.issue(agent.id, ANONYMOUS) if self._assertions else None
        except Exception:
            # The gateway's own failure says nothing about the agent: no outcome is recorded.
            log.exception("signing a health probe failed", extra={"agentId": agent.id})
            return False
        try:
            await self._cards.fetch(card_url_of(agent))
            started = time.perf_counter()
            await self._a2a.ping(agent.endpoint, agent.protocol_version, assertion=assertion)
            latency = round((time.perf_counter() - started) * 1000, 3)
        except GatewayError as error:
            ok = False
            log.info("agent failed its health probe", extra={"agentId": agent.id, "reason": error.message})
        await self._registry.record_probe(agent.id, ok, latency)
        return ok
