"""The exchange's kit agent (its A2A card) and the one process serving it with the REST API.

:func:`create_exchange_app` is a small Starlette parent: ``/v1/agent`` is the Agent Connect REST API,
everything else the kit agent app (card, JSON-RPC). Its lifespan starts the kit app's runtime, then the
exchange service (the paced replay and the periodic save), and stops them in the reverse order.

The A2A trading skills (market data, portfolio, orders, order updates) are added to the definition
elsewhere; until then the card carries ``exchange-info``, which says where the REST API is and what
it lists.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.routing import Mount

from a2a_gateway.agent import AgentDefinition, AgentEvent, ArtifactChunk, Skill, SkillContext, skill
from a2a_gateway.app import create_agent_app
from a2a_gateway.protocol import v1
from a2a_gateway.settings import Settings
from agents_examples.trading.exchange.api.routes import API_PREFIX, AgentConnectApi
from agents_examples.trading.exchange.service import ExchangeService

AGENT_NAME = "Paper Exchange"
AGENT_DESCRIPTION = (
    "A paper exchange on replayed historical (or labelled synthetic) market data, with the Agent "
    "Connect REST API under /v1/agent."
)


def info_skill(service: ExchangeService, public_url: str) -> Skill:
    """``exchange-info``: the REST base URL, the instruments and their data's provenance."""

    @skill(
        "exchange-info",
        "Exchange info",
        "Where the Agent Connect REST API is, the listed instruments and where their prices come from.",
        tags=["trading", "info"],
    )
    async def exchange_info(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
        yield ArtifactChunk.of_data(
            {
                "restApi": public_url.rstrip("/") + API_PREFIX,
                "instruments": [
                    {"symbol": i.symbol, "id": i.id, "name": i.name, "quote": i.quote}
                    for i in service.instruments
                ],
                "provenance": [
                    service.simulator.provenance(s).as_dict() for s in service.instruments.symbols
                ],
                "simulatedTime": service.now_ms,
            },
            name="exchange",
        )

    return exchange_info


def exchange_agent(
    service: ExchangeService, public_url: str, skills: Sequence[Skill] = ()
) -> AgentDefinition:
    """The kit agent: ``skills`` (the trading skills, when given) after ``exchange-info``."""
    return AgentDefinition(
        name=AGENT_NAME,
        description=AGENT_DESCRIPTION,
        skills=[info_skill(service, public_url), *skills],
        version="1.0.0",
    )


def create_exchange_app(
    service: ExchangeService,
    settings: Settings,
    *,
    agent: AgentDefinition | None = None,
    paced: bool = True,
    api: AgentConnectApi | None = None,
) -> Starlette:
    """One ASGI app: the REST API at ``/v1/agent`` and the kit agent app for the rest (see the module
    doc). ``paced`` False leaves the replay to the caller (tests step the simulator themselves)."""
    definition = agent or exchange_agent(service, settings.public_url or "")
    kit_app = create_agent_app(definition, settings)
    rest = (api or AgentConnectApi(service)).app()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with kit_app.router.lifespan_context(kit_app), service.running(paced=paced):
            yield

    app = Starlette(routes=[Mount(API_PREFIX, app=rest), Mount("", app=kit_app)], lifespan=lifespan)
    app.state.exchange = service
    app.state.kit_app = kit_app
    return app
