"""Every URL the gateway serves, in one table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.cards import CardEndpoint
from a2a_gateway.api.health import HealthEndpoints
from a2a_gateway.api.jsonrpc import JsonRpcEndpoint

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
        Route("/metrics", metrics, methods=["GET"]),
    ]
