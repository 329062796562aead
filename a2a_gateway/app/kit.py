"""A kit agent's app: its skills over A2A, its card and health; registration with a gateway if asked."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from a2a_gateway.agent import AgentDefinition
from a2a_gateway.api.kit_authenticator import KitAuthenticator
from a2a_gateway.app.building import Core, base_routes, build_core, card_endpoint, task_service
from a2a_gateway.app.cards import agent_template
from a2a_gateway.app.identity import GatewayAuth, build_identity
from a2a_gateway.app.runtime import Runtime, assemble
from a2a_gateway.outbound.gateway_registrar import GatewayRegistrar
from a2a_gateway.outbound.ssrf import Resolver
from a2a_gateway.protocol.card import kit_security
from a2a_gateway.settings import Settings
from a2a_gateway.storage.redis_store import RedisNonceStore


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
    Calls relayed by the gateway carry its caller assertion; ``require_gateway`` refuses the others
    but the owner's (and ``direct_callers``'). ``app.state.gateway_auth`` verifies gateway credentials
    on the agent's own routes, sharing the caches of its A2A endpoint.
    """
    if settings.require_gateway and not settings.gateway_url:
        raise ValueError("require_gateway needs gateway_url (the gateway whose assertions are verified)")
    core = build_core(
        settings,
        outbound_transport=outbound_transport,
        resolver=resolver,
        auto_migrate=auto_migrate,
        rate_limits=rate_limits,
    )
    service = task_service(core, agent)
    runtime = Runtime(core, service)
    runtime.registrar = registrar(core, agent)
    auth = gateway_auth(core, runtime.registrar)
    # The kit's own authenticator replaces the gateway's: the gateway vouches for its callers.
    core.authn = KitAuthenticator(
        core.authn.auth,
        settings.open_gateway,
        core.authn.limiter,
        settings.max_body_bytes,
        identity=auth.identity,
        require_gateway=settings.require_gateway,
        owner=lambda: runtime.registrar.owner_id if runtime.registrar is not None else None,
        direct_callers=settings.direct_callers,
    )
    # Behind a gateway the card names its assertion and gateway credentials; alone, the card says what
    # the open_gateway setting allows (no gateway credential can be verified then).
    security = kit_security(settings.require_gateway) if settings.gateway_url else None
    cards = card_endpoint(core, agent_template(agent), agent.skills, security)
    _, routes = base_routes(core, service, cards)
    app = assemble(runtime, routes)
    app.state.gateway_auth = auth
    return app


def registrar(core: Core, agent: AgentDefinition) -> GatewayRegistrar | None:
    """The registrar when a gateway is configured with the owner's key, or the agent's id and nxk_ key."""
    settings = core.settings
    owner_key = settings.gateway_key.get_secret_value() if settings.gateway_key is not None else None
    agent_key = settings.agent_key.get_secret_value() if settings.agent_key is not None else None
    if not settings.gateway_url or (owner_key is None and not (settings.agent_id and agent_key)):
        return None
    return GatewayRegistrar(
        core.client,
        settings.gateway_url,
        owner_key,
        agent=agent,
        public_url=settings.public_url,
        interval=settings.heartbeat_seconds,
        agent_id=settings.agent_id,
        agent_key=agent_key,
        data_dir=settings.data_dir,
    )


def gateway_auth(core: Core, registrar: GatewayRegistrar | None) -> GatewayAuth:
    """The agent's gateway identity (none without gateway_url: gateway credentials are then refused)."""
    settings = core.settings
    if not settings.gateway_url:
        return GatewayAuth(None)
    configured = settings.agent_key.get_secret_value() if settings.agent_key is not None else None
    identity = build_identity(
        settings,
        core.client,
        agent_id=lambda: registrar.agent_id if registrar is not None else settings.agent_id,
        agent_key=lambda: registrar.agent_key if registrar is not None else configured,
        # Several processes of one agent share the replay memory when they share a Redis.
        replays=RedisNonceStore(core.redis, settings.redis_prefix) if core.redis is not None else None,
    )
    return GatewayAuth(identity)
