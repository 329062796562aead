"""The trading engine's one process: the kit agent (card, JSON-RPC), Nexgent's REST API and WebSocket.

:func:`create_engine_app` is a small Starlette parent: ``/api/v1`` is the REST API, ``/ws`` the
positions WebSocket, everything else the kit agent app (card, ``/a2a``). All three accept the gateway's
credentials through the kit app's :class:`~a2a_gateway.app.GatewayAuth` (one account for the network).

Its lifespan starts the kit app's runtime (registration with the gateway, heartbeats), learns the
exchange's listings through the gateway (retrying in the background until it can), and runs the price
feed: the exchange's ``order-updates`` subscription through the gateway, resubscribing and catching up
after a drop. Shutting down stops the feed, then the trades in flight, then the kit app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from a2a_gateway.agent import AgentDefinition, Skill
from a2a_gateway.app import GatewayAuth, create_agent_app
from a2a_gateway.outbound.ssrf import Resolver
from a2a_gateway.settings import Settings
from agents_examples.trading.engine.api.forward import GatewayForwarder
from agents_examples.trading.engine.api.routes import EngineApi
from agents_examples.trading.engine.api.signal_routes import SIGNALS_PER_MINUTE
from agents_examples.trading.engine.exchange_link import ExchangeUnavailable, PriceFeed, Tick, WalletKeys
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.skills import EngineSkills
from agents_examples.trading.engine.ws import positions_socket

log = logging.getLogger(__name__)

AGENT_NAME = "Trading Engine"
AGENT_DESCRIPTION = (
    "Signal-driven paper trading agents (Nexgent's API and WebSocket under /api/v1 and /ws): signals in, "
    "orders to the paper exchange through the gateway, positions with stop loss, take profit and risk "
    "limits, streamed live."
)
VERSION = "1.0.0"
LISTING_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


def engine_agent(skills: Sequence[Skill]) -> AgentDefinition:
    """The kit agent with ``skills`` on its card."""
    return AgentDefinition(
        name=AGENT_NAME, description=AGENT_DESCRIPTION, skills=list(skills), version=VERSION
    )


class NoGateway:
    """The exchange port of an engine started without ``--gateway-url``: it cannot trade (orders go
    only through a gateway), and says so on every call."""

    MESSAGE = "this engine has no gateway configured (--gateway-url): it cannot reach the exchange"

    async def listings(self) -> list[Any]:
        raise ExchangeUnavailable(self.MESSAGE)

    async def portfolio(self, keys: WalletKeys) -> dict[str, Any]:
        raise ExchangeUnavailable(self.MESSAGE)

    async def place_order(self, keys: WalletKeys, order: dict[str, Any]) -> Any:
        raise ExchangeUnavailable(self.MESSAGE)


class _Directory:
    """The WebSocket's view of the service (owners and initial positions)."""

    def __init__(self, service: EngineService) -> None:
        self._service = service

    async def owner_of(self, agent_id: str) -> str | None:
        return self._service.owner_of(agent_id)

    async def initial_positions(self, agent_id: str) -> list[dict[str, Any]]:
        return self._service.initial_positions(agent_id)


def feed_keys(service: EngineService) -> Callable[[], WalletKeys | None]:
    """The wallet the price feed subscribes with: the first wallet in use (prices are everyone's)."""

    def keys() -> WalletKeys | None:
        wallets = list(service.trader.wallets.values())
        for wallet in sorted(wallets, key=lambda w: (w.agent_id is None, w.created_at)):
            return WalletKeys(wallet.api_key, wallet.api_secret)
        return None

    return keys


def create_engine_app(
    service: EngineService,
    settings: Settings,
    *,
    feed: PriceFeed | None = None,
    forwarder_client: httpx.AsyncClient | None = None,
    outbound_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    auth: GatewayAuth | None = None,
    ping_seconds: float = 30.0,
    max_connections: int = 500,
    signals_per_minute: int = SIGNALS_PER_MINUTE,
) -> Starlette:
    """One ASGI app: ``/api/v1``, ``/ws`` and the kit agent (see the module doc).

    ``feed`` runs in the lifespan when given; ``forwarder_client`` reaches the gateway for the
    ``/auth`` and ``/api-keys`` routes (none: those routes answer 502); ``auth`` overrides the kit
    app's gateway auth (tests)."""
    skills = EngineSkills(service)
    kit_app = create_agent_app(
        engine_agent(skills.all()), settings, outbound_transport=outbound_transport, resolver=resolver
    )
    gateway_auth: GatewayAuth = auth or kit_app.state.gateway_auth
    forwarder = (
        GatewayForwarder(forwarder_client, settings.gateway_url)
        if forwarder_client is not None and settings.gateway_url
        else None
    )

    def feed_status() -> dict[str, Any]:
        return {
            "connected": bool(feed and feed.connected),
            "lastTickAt": feed.last_tick_ms if feed else None,
            "reconnects": feed.reconnects if feed else 0,
            "configured": feed is not None,
        }

    api = EngineApi(
        service,
        gateway_auth,
        forwarder,
        version=VERSION,
        feed_status=feed_status,
        signals_per_minute=signals_per_minute,
    )
    socket = positions_socket(
        gateway_auth,
        _Directory(service),
        service.hub,
        ping_seconds=ping_seconds,
        max_connections=max_connections,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        async with kit_app.router.lifespan_context(kit_app):
            background = []
            if not isinstance(service.trader.exchange, NoGateway):
                background.append(asyncio.create_task(_learn_listings(service, stop)))
            if feed is not None:
                background.append(asyncio.create_task(feed.run(stop)))
            try:
                yield
            finally:
                stop.set()
                service.hub.close_all()
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await service.trader.close()

    app = Starlette(
        routes=[Mount("/api/v1", routes=api.routes()), socket, Mount("", app=kit_app)], lifespan=lifespan
    )
    app.state.engine = service
    app.state.kit_app = kit_app
    app.state.skills = skills
    return app


async def _learn_listings(service: EngineService, stop: asyncio.Event) -> None:
    """Learn the exchange's listings, trying again until it answers (the gateway may start later)."""
    attempt = 0
    while not stop.is_set():
        try:
            await service.trader.refresh_listings()
            log.info("learnt %d listings from the exchange", len(service.trader.listings))
            return
        except ExchangeUnavailable as exc:
            pause = LISTING_RETRY_SECONDS[min(attempt, len(LISTING_RETRY_SECONDS) - 1)]
            log.info("exchange listings not available yet (%s); retrying in %.1f s", exc, pause)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)


async def deliver(service: EngineService, ticks: list[Tick]) -> None:
    """The feed's ``on_ticks``: the trader applies them."""
    await service.trader.on_ticks(ticks)
