"""The exchange's kit agent (its A2A card) and the one process serving it with the REST API.

:func:`create_exchange_app` is a small Starlette parent: ``/v1/agent`` is the Agent Connect REST API,
everything else the kit agent app (card, JSON-RPC). Its lifespan starts the kit app's runtime, then the
exchange service (the paced replay and the periodic save), and stops them in the reverse order.

The card's skills are the trading skills of :mod:`.skills` (market data, portfolio, orders, the
order-updates subscription), sharing the REST API's guard: its rate budgets and its nonce store.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from a2a_gateway.agent import AgentDefinition, Skill
from a2a_gateway.app import create_agent_app
from a2a_gateway.outbound.ssrf import Resolver
from a2a_gateway.settings import Settings
from agents_examples.trading.exchange.api.routes import API_PREFIX, AgentConnectApi
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.skills import ExchangeSkills

AGENT_NAME = "Paper Exchange"
AGENT_DESCRIPTION = (
    "A paper exchange on replayed historical (or labelled synthetic) market data, with the Agent "
    "Connect REST API under /v1/agent."
)


def exchange_agent(skills: Sequence[Skill]) -> AgentDefinition:
    """The kit agent with ``skills`` on its card."""
    return AgentDefinition(
        name=AGENT_NAME,
        description=AGENT_DESCRIPTION,
        skills=list(skills),
        version="1.0.0",
    )


def create_exchange_app(
    service: ExchangeService,
    settings: Settings,
    *,
    agent: AgentDefinition | None = None,
    paced: bool = True,
    api: AgentConnectApi | None = None,
    outbound_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> Starlette:
    """One ASGI app: the REST API at ``/v1/agent`` and the kit agent app for the rest (see the module
    doc). ``paced`` False leaves the replay to the caller (tests step the simulator themselves);
    ``outbound_transport`` and ``resolver`` go to the kit app (its calls to the gateway)."""
    api = api or AgentConnectApi(service)
    trading = ExchangeSkills(api)
    definition = agent or exchange_agent(trading.all())
    kit_app = create_agent_app(definition, settings, outbound_transport=outbound_transport, resolver=resolver)
    rest = api.app()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with kit_app.router.lifespan_context(kit_app), service.running(paced=paced):
            yield

    app = Starlette(routes=[Mount(API_PREFIX, app=rest), Mount("", app=kit_app)], lifespan=lifespan)
    app.state.exchange = service
    app.state.kit_app = kit_app
    app.state.skills = trading
    return app
