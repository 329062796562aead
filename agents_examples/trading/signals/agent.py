"""The signal agent's one process: the kit agent (card, JSON-RPC) with the feed, strategy and intake.

:func:`create_signals_app` wraps the kit agent app. Its lifespan starts the kit app's runtime
(registration with the gateway, heartbeats), the service's intake workers, the exchange account the
price subscription needs (:class:`FeedAccount`: keys given, or a sandbox account opened at the exchange,
retried until it opens) and the price feed: the exchange's ``order-updates`` subscription through the
gateway, each bar close to the strategy. Shutting down stops the feed, then the workers, then the kit
app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from a2a_gateway.agent import AgentDefinition, Skill
from a2a_gateway.app import create_agent_app
from a2a_gateway.outbound.ssrf import Resolver
from a2a_gateway.settings import Settings
from agents_examples.trading.engine.exchange_link import PriceFeed, WalletKeys
from agents_examples.trading.gateway_client import GatewayClient, GatewayUnavailable
from agents_examples.trading.signals.service import SignalService
from agents_examples.trading.signals.skills import OwnerLookup, SignalSkills

log = logging.getLogger(__name__)

AGENT_NAME: Final = "Signal Agent"
AGENT_DESCRIPTION: Final = (
    "Watches the paper exchange's bar closes through the gateway and runs a moving-average crossover "
    "with a volume filter per instrument; each buy or sell goes to the trading engine's signal-intake "
    "through the gateway."
)
VERSION: Final = "1.0.0"
RETRY_SECONDS: Final = (0.5, 1.0, 2.0, 5.0)


def signals_agent(skills: Sequence[Skill]) -> AgentDefinition:
    """The kit agent with ``skills`` on its card."""
    return AgentDefinition(
        name=AGENT_NAME, description=AGENT_DESCRIPTION, skills=list(skills), version=VERSION
    )


async def _pause(stop: asyncio.Event, attempt: int) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])


class FeedAccount:
    """The exchange account the price subscription is opened with: ``keys`` given, or one ``opener``
    opens (a sandbox account at the exchange) when :meth:`open` runs."""

    def __init__(
        self,
        keys: WalletKeys | None = None,
        opener: Callable[[str], Awaitable[WalletKeys]] | None = None,
    ) -> None:
        if keys is None and opener is None:
            raise ValueError("the price feed needs exchange keys or a way to open a sandbox account")
        self._keys = keys
        self._opener = opener

    def keys(self) -> WalletKeys | None:
        """The account's keys; None until it is open."""
        return self._keys

    async def open(self, stop: asyncio.Event) -> None:
        """Open the account unless keys were given, trying again until the exchange answers."""
        attempt = 0
        while self._keys is None and self._opener is not None and not stop.is_set():
            try:
                self._keys = await self._opener("signal agent")
                log.info("opened a sandbox account at the exchange for the price feed")
            except GatewayUnavailable as error:
                log.info("could not open a sandbox account yet (%s); trying again", error)
                await _pause(stop, attempt)
                attempt += 1


class Owner:
    """The owner's gateway user id, learnt once from the gateway (``GET /api/v1/auth/me`` with the
    owner's key) and then remembered; None while the gateway cannot say."""

    def __init__(self, gateway: GatewayClient | None) -> None:
        self._gateway = gateway
        self._id: str | None = None
        self._asking = asyncio.Lock()

    async def __call__(self) -> str | None:
        if self._id is not None or self._gateway is None:
            return self._id
        async with self._asking:
            if self._id is None:
                try:
                    self._id = await self._gateway.me()
                except GatewayUnavailable as error:
                    log.info("the owner is not known yet: %s", error)
            return self._id


def create_signals_app(
    service: SignalService,
    settings: Settings,
    *,
    owner: OwnerLookup,
    feed: PriceFeed | None = None,
    account: FeedAccount | None = None,
    outbound_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> Starlette:
    """One ASGI app: the kit agent with the signal skills, the feed in its lifespan (module doc)."""
    skills = SignalSkills(service, owner)
    kit_app = create_agent_app(
        signals_agent(skills.all()), settings, outbound_transport=outbound_transport, resolver=resolver
    )

    async def learn_owner(stop: asyncio.Event) -> None:
        attempt = 0
        while await owner() is None and not stop.is_set():
            await _pause(stop, attempt)
            attempt += 1

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        async with kit_app.router.lifespan_context(kit_app):
            await service.start()
            background = [asyncio.create_task(learn_owner(stop))]
            if account is not None:
                background.append(asyncio.create_task(account.open(stop)))
            if feed is not None:
                background.append(asyncio.create_task(feed.run(stop)))
            try:
                yield
            finally:
                stop.set()
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await service.close()

    app = Starlette(routes=[Mount("", app=kit_app)], lifespan=lifespan)
    app.state.signals = service
    app.state.kit_app = kit_app
    app.state.skills = skills
    return app
