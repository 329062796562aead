"""A kit agent's app: its skills over A2A, its card and health; registration with a gateway if asked."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from a2a_gateway.agent import AgentDefinition
from a2a_gateway.app.building import base_routes, build_core, card_endpoint, task_service
from a2a_gateway.app.cards import agent_template
from a2a_gateway.app.runtime import Runtime, assemble
from a2a_gateway.outbound.gateway_registrar import GatewayRegistrar
from a2a_gateway.outbound.ssrf import Resolver
from a2a_gateway.settings import Settings


def create_agent_app(
    agent: AgentDefinition,
    settings: Settings,
    *,
    outbound_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    auto_migrate: bool | None = None,
    rate_limits: bool = False,
) -> Starlette:
    """Serve an agent built with the kit: its own card, JSON-RPC endpoint and task store.

    Callers' budgets are the gateway's business, so a kit agent applies no rate limits unless asked.
    """
    core = build_core(
        settings,
        outbound_transport=outbound_transport,
        resolver=resolver,
        auto_migrate=auto_migrate,
        rate_limits=rate_limits,
    )
    service = task_service(core, agent)
    runtime = Runtime(core, service)
    if settings.gateway_url and settings.gateway_key is not None:
        runtime.registrar = GatewayRegistrar(
            core.client,
            settings.gateway_url,
            settings.gateway_key.get_secret_value(),
            agent=agent,
            public_url=settings.public_url,
            interval=settings.heartbeat_seconds,
        )
    _, routes = base_routes(core, service, card_endpoint(core, agent_template(agent), agent.skills))
    return assemble(runtime, routes)
