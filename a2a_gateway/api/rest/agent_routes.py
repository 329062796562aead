"""/api/v1/agents, /api/v1/discover and per-agent keys (seed 002): owner-checked, scope-checked."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.api_key_routes import NewKeyBody, key_view
from a2a_gateway.api.rest.common import RestBody, data, parse, rest
from a2a_gateway.auth import scopes
from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import InvalidParams
from a2a_gateway.protocol.base import format_timestamp
from a2a_gateway.registry.models import Agent, DiscoveryQuery
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.registry.spec import AgentPatch, AgentRegistration


class CardImport(AgentPatch):
    """``{"cardUrl": ...}`` (plus optional tags, category, metadata, pricePerTask) registers from a card."""

    card_url: str | None = Field(default=None, min_length=1, max_length=2048)


class HeartbeatBody(RestBody):
    """Optional heartbeat body."""

    status: str | None = None
    metadata: dict[str, Any] | None = Field(default=None)


def agent_view(agent: Agent, registry: RegistryService) -> dict[str, Any]:
    """An agent as the API shows it."""
    return {
        "id": agent.id,
        "ownerId": agent.owner_id,
        "name": agent.name,
        "description": agent.description,
        "endpoint": agent.endpoint,
        "skills": [
            {"id": s.id, "name": s.name, "description": s.description, "tags": s.tags,
             "inputSchema": s.input_schema, "outputSchema": s.output_schema}
            for s in agent.skills
        ],
        "tags": agent.tags,
        "category": agent.category,
        "metadata": agent.metadata,
        "pricePerTask": agent.price_per_task,
        "protocolVersion": agent.protocol_version,
        "status": agent.status(registry.now(), registry.offline_after_seconds),
        "lastHeartbeat": format_timestamp(agent.last_heartbeat) if agent.last_heartbeat else None,
        "trustScore": agent.trust_score,
        "health": {
            "callsFailing": agent.call_failing,
            "latencyMs": agent.latency_ms,
            "lastProbeAt": format_timestamp(agent.probed_at) if agent.probed_at else None,
            "lastProbeOk": agent.probe_ok,
        },
        "cardUrl": agent.card_url,
        "createdAt": format_timestamp(agent.created_at),
        "updatedAt": format_timestamp(agent.updated_at),
    }  # fmt: skip


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.lstrip("-").isdigit() or not low <= int(raw) <= high:
        raise InvalidParams(
            f"{name} must be an integer from {low} to {high}",
            violations=[{"field": name, "description": f"{low} to {high}"}],
        )
    return int(raw)


def discovery_query(request: Request) -> DiscoveryQuery:
    """GET /api/v1/discover query parameters, validated."""
    params = request.query_params
    min_trust = params.get("minTrustScore")
    try:
        trust = float(min_trust) if min_trust is not None else None
    except ValueError:
        trust = -1.0
    if trust is not None and not 0 <= trust <= 100:
        raise InvalidParams(
            "minTrustScore must be a number from 0 to 100",
            violations=[{"field": "minTrustScore", "description": "0 to 100"}],
        )
    status = params.get("status")
    if status is not None and status not in ("online", "offline", "degraded"):
        raise InvalidParams(
            "status must be online, offline or degraded",
            violations=[{"field": "status", "description": "online, offline or degraded"}],
        )
    return DiscoveryQuery(
        skill_tags=[t for t in (params.get("skillTags") or "").split(",") if t.strip()],
        category=params.get("category") or None,
        min_trust_score=trust,
        status=status,
        text=(params.get("q") or "").strip()[:200] or None,
        limit=_int(request, "limit", 20, 1, 100),
        offset=_int(request, "offset", 0, 0, 1_000_000),
    )


def routes(authn: Authenticator, registry: RegistryService) -> list[BaseRoute]:
    """The registry routes."""
    auth = authn.auth

    async def caller(request: Request, scope: str) -> Principal:
        principal = await authn.resolve(request, required=True)
        scopes.require(principal.scopes, scope)
        return principal

    @rest
    async def register(request: Request) -> Response:
        principal = await caller(request, "agents:write")
        by_card = await parse(request, CardImport)
        if by_card.card_url:
            agent = await registry.import_card(principal, by_card.card_url, by_card)
            return data(agent_view(agent, registry), 201)
        spec = await parse(request, AgentRegistration)
        return data(agent_view(await registry.register(principal, spec), registry), 201)

    @rest
    async def list_mine(request: Request) -> Response:
        principal = await caller(request, "agents:read")
        return data([agent_view(a, registry) for a in await registry.mine(principal)])

    @rest
    async def get_one(request: Request) -> Response:
        await caller(request, "agents:read")
        return data(agent_view(await registry.get(request.path_params["agent_id"]), registry))

    @rest
    async def patch(request: Request) -> Response:
        principal = await caller(request, "agents:write")
        changes = await parse(request, AgentPatch)
        agent = await registry.update(principal, request.path_params["agent_id"], changes)
        return data(agent_view(agent, registry))

    @rest
    async def remove(request: Request) -> Response:
        principal = await caller(request, "agents:write")
        await registry.delete(principal, request.path_params["agent_id"])
        return data({"id": request.path_params["agent_id"], "deleted": True})

    @rest
    async def heartbeat(request: Request) -> Response:
        principal = await authn.resolve(request, required=True)
        body = await parse(request, HeartbeatBody)
        agent = await registry.heartbeat(
            principal, request.path_params["agent_id"], body.status, body.metadata
        )
        view = agent_view(agent, registry)
        return data({"status": view["status"], "last_heartbeat": view["lastHeartbeat"]})

    @rest
    async def discover(request: Request) -> Response:
        # Discovery is public in the open gateway, as the gateway's discover skill is over A2A.
        principal = await authn.resolve(request)
        if principal.authenticated:
            scopes.require(principal.scopes, "agents:read")
        query = discovery_query(request)
        page = await registry.discover(query)
        body = {"data": [agent_view(a, registry) for a in page.agents],
                "meta": {"total": page.total, "limit": query.limit, "offset": query.offset}}  # fmt: skip
        return data_with_meta(body)

    @rest
    async def create_agent_key(request: Request) -> Response:
        principal = await caller(request, "agents:write")
        agent = await registry.owned(principal, request.path_params["agent_id"])
        body = await parse(request, NewKeyBody)
        issued = await auth.create_key(
            principal, body.name, body.scopes, body.expires_in_days, kind="agent", agent_id=agent.id
        )
        return data({**key_view(issued.record), "key": issued.plaintext}, 201)

    @rest
    async def list_agent_keys(request: Request) -> Response:
        principal = await caller(request, "agents:read")
        agent = await registry.owned(principal, request.path_params["agent_id"])
        return data([key_view(k) for k in await auth.list_keys(principal, agent.id)])

    @rest
    async def revoke_agent_key(request: Request) -> Response:
        principal = await caller(request, "agents:write")
        agent = await registry.owned(principal, request.path_params["agent_id"])
        key_id = request.path_params["key_id"]
        await auth.revoke_key(principal, key_id, agent.id)
        return data({"id": key_id, "revoked": True})

    return [
        Route("/api/v1/agents", register, methods=["POST"]),
        Route("/api/v1/agents", list_mine, methods=["GET"]),
        Route("/api/v1/agents/{agent_id}", get_one, methods=["GET"]),
        Route("/api/v1/agents/{agent_id}", patch, methods=["PATCH"]),
        Route("/api/v1/agents/{agent_id}", remove, methods=["DELETE"]),
        Route("/api/v1/agents/{agent_id}/heartbeat", heartbeat, methods=["POST"]),
        Route("/api/v1/agents/{agent_id}/api-keys", create_agent_key, methods=["POST"]),
        Route("/api/v1/agents/{agent_id}/api-keys", list_agent_keys, methods=["GET"]),
        Route("/api/v1/agents/{agent_id}/api-keys/{key_id}", revoke_agent_key, methods=["DELETE"]),
        Route("/api/v1/discover", discover, methods=["GET"]),
    ]


def data_with_meta(body: dict[str, Any]) -> Response:
    """A list response carrying its page metadata beside ``data``."""
    return Response(orjson.dumps(body), media_type="application/json")
