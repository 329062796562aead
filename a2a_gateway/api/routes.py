"""Every URL the gateway serves, in one table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.cards import CardEndpoint
from a2a_gateway.api.health import HealthEndpoints
from a2a_gateway.api.jsonrpc import JsonRpcEndpoint
from a2a_gateway.api.jwks import JwksEndpoint
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.proxy import AgentProxy
from a2a_gateway.api.proxy_cards import ProxyCards
from a2a_gateway.api.rest.agent_routes import AgentApi
from a2a_gateway.api.rest.api_key_routes import ApiKeyApi
from a2a_gateway.api.rest.auth_routes import AuthApi
from a2a_gateway.api.rest.idempotency import Idempotency
from a2a_gateway.api.rest.mount import RestResource, rest_mount
from a2a_gateway.api.rest.task_routes import TaskApi
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.routing.deadlines import Deadlines
from a2a_gateway.routing.ports import CallLog
from a2a_gateway.tasks.service import TaskService

Endpoint = Callable[[Request], Awaitable[Response]]


def build_routes(
    rpc: JsonRpcEndpoint, cards: CardEndpoint, health: HealthEndpoints, metrics: Endpoint
) -> list[BaseRoute]:
    """The route table (see the URL map in docs/api.md)."""
    return [
        Route("/.well-known/agent-card.json", cards.current, methods=["GET"]),
        Route("/.well-known/agent.json", cards.legacy, methods=["GET"]),
        Route("/a2a", rpc.handle, methods=["POST"]),
        Route("/a2a/", rpc.handle, methods=["POST"]),
        Route("/api/v1/a2a", rpc.handle, methods=["POST"]),
        Route("/health", health.health, methods=["GET"]),
        Route("/health/live", health.live, methods=["GET"]),
        Route("/health/ready", health.ready, methods=["GET"]),
        Route("/api/v1/health", health.api_health, methods=["GET"]),
        Route("/api/v1/health/live", health.live, methods=["GET"]),
        Route("/api/v1/health/ready", health.ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/api/v1/metrics", metrics, methods=["GET"]),
    ]


def gateway_routes(
    rpc: JsonRpcEndpoint,
    authn: Authenticator,
    registry: RegistryService,
    proxy_cards: ProxyCards,
    service: TaskService,
    *,
    calls: CallLog | None = None,
    deadlines: Deadlines | None = None,
    ring: KeyRing | None = None,
    resources: Sequence[RestResource] = (),
    idempotency: Idempotency | None = None,
) -> list[BaseRoute]:
    """What only the gateway serves: the REST resources (one error boundary), the per-agent proxy and,
    as the network's identity provider, the JWKS."""
    proxy = AgentProxy(rpc)
    keys: list[BaseRoute] = (
        [] if ring is None else [Route("/.well-known/jwks.json", JwksEndpoint(ring).serve, methods=["GET"])]
    )
    return [
        *keys,
        rest_mount(
            AuthApi(authn),
            ApiKeyApi(authn),
            AgentApi(authn, registry),
            TaskApi(authn, service, calls, deadlines, idempotency),
            *resources,
        ),
        Route("/a2a/agents/{agent_id}", proxy.handle, methods=["POST"]),
        Route("/a2a/agents/{agent_id}/", proxy.handle, methods=["POST"]),
        Route("/a2a/agents/{agent_id}/.well-known/agent-card.json", proxy_cards.serve, methods=["GET"]),
        Route("/a2a/agents/{agent_id}/.well-known/agent.json", proxy_cards.serve, methods=["GET"]),
    ]
