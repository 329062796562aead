"""/api/v1/agents, /api/v1/discover and per-agent keys (seed 002): owner-checked, scope-checked.

Each route states its action to ``Principal.require``; a per-agent key may read, PATCH and PUT its own
agent and send its heartbeat, and is refused the rest there.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.api_key_routes import NewKeyBody
from a2a_gateway.api.rest.bodies import RestBody, data, page, parse, query_int
from a2a_gateway.api.rest.views import agent_view, key_view
from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import InvalidParams
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
        limit=query_int(request, "limit", 20, 1, 100),
        offset=query_int(request, "offset", 0, 0, 1_000_000),
    )


class AgentApi:
    """The registry routes: agents, their heartbeats and keys, and discovery."""

    def __init__(self, authn: Authenticator, registry: RegistryService) -> None:
        self._authn = authn
        self._auth = authn.auth
        self._registry = registry

    def routes(self) -> list[BaseRoute]:
        """The route table of this resource."""
        one, keys = "/api/v1/agents/{agent_id}", "/api/v1/agents/{agent_id}/api-keys"
        return [
            Route("/api/v1/agents", self.register, methods=["POST"]),
            Route("/api/v1/agents", self.list_mine, methods=["GET"]),
            Route(one, self.get_one, methods=["GET"]),
            Route(one, self.patch, methods=["PATCH"]),
            Route(one, self.replace, methods=["PUT"]),
            Route(one, self.remove, methods=["DELETE"]),
            Route(one + "/heartbeat", self.heartbeat, methods=["POST"]),
            Route(keys, self.create_agent_key, methods=["POST"]),
            Route(keys, self.list_agent_keys, methods=["GET"]),
            Route(keys + "/{key_id}", self.revoke_agent_key, methods=["DELETE"]),
            Route("/api/v1/discover", self.discover, methods=["GET"]),
        ]

    async def _caller(self, request: Request, scope: str, *, agent: bool = False) -> Principal:
        # ``agent``: the action is on the agent named in the path (a per-agent key: its own only).
        principal = await self._authn.resolve(request, required=True)
        principal.require(scope, agent=request.path_params["agent_id"] if agent else None)
        return principal

    def _view(self, agent: Agent) -> dict[str, Any]:
        return agent_view(agent, self._registry)

    async def register(self, request: Request) -> Response:
        """POST /api/v1/agents: from a body, or from a published card (``cardUrl``)."""
        principal = await self._caller(request, "agents:write")
        by_card = await parse(request, CardImport)
        if by_card.card_url:
            agent = await self._registry.import_card(principal, by_card.card_url, by_card)
            return data(self._view(agent), 201)
        spec = await parse(request, AgentRegistration)
        return data(self._view(await self._registry.register(principal, spec)), 201)

    async def list_mine(self, request: Request) -> Response:
        """GET /api/v1/agents: the caller's agents."""
        principal = await self._caller(request, "agents:read")
        return data([self._view(a) for a in await self._registry.mine(principal)])

    async def get_one(self, request: Request) -> Response:
        """GET /api/v1/agents/{id}: any agent (a per-agent key: its own)."""
        await self._caller(request, "agents:read", agent=True)
        return data(self._view(await self._registry.get(request.path_params["agent_id"])))

    async def patch(self, request: Request) -> Response:
        """PATCH /api/v1/agents/{id}: change the fields given."""
        principal = await self._caller(request, "agents:write", agent=True)
        changes = await parse(request, AgentPatch)
        return data(
            self._view(await self._registry.update(principal, request.path_params["agent_id"], changes))
        )

    async def replace(self, request: Request) -> Response:
        """PUT /api/v1/agents/{id}: the whole writable record, required fields as at registration.

        Seed 000's Nexgent-style clients send PUT; fields left out go back to their defaults.
        """
        principal = await self._caller(request, "agents:write", agent=True)
        spec = await parse(request, AgentRegistration)
        return data(
            self._view(await self._registry.replace(principal, request.path_params["agent_id"], spec))
        )

    async def remove(self, request: Request) -> Response:
        """DELETE /api/v1/agents/{id}."""
        principal = await self._caller(request, "agents:write")
        await self._registry.delete(principal, request.path_params["agent_id"])
        return data({"id": request.path_params["agent_id"], "deleted": True})

    async def heartbeat(self, request: Request) -> Response:
        """POST /api/v1/agents/{id}/heartbeat: by the agent's own key, or with agents:write."""
        principal = await self._authn.resolve(request, required=True)
        agent_id = request.path_params["agent_id"]
        if not principal.speaks_for(agent_id):
            principal.require("agents:write", agent=agent_id)
        body = await parse(request, HeartbeatBody)
        view = self._view(await self._registry.heartbeat(principal, agent_id, body.status, body.metadata))
        return data({"status": view["status"], "last_heartbeat": view["lastHeartbeat"]})

    async def discover(self, request: Request) -> Response:
        """GET /api/v1/discover: public in the open gateway, as the gateway's discover skill is over A2A."""
        principal = await self._authn.resolve(request)
        if principal.authenticated:
            principal.require("agents:read")
        query = discovery_query(request)
        found = await self._registry.discover(query)
        meta = {"total": found.total, "limit": query.limit, "offset": query.offset}
        return page([self._view(a) for a in found.agents], meta)

    async def create_agent_key(self, request: Request) -> Response:
        """POST /api/v1/agents/{id}/api-keys: a per-agent key (nxk_), shown once."""
        principal = await self._caller(request, "keys:write")
        agent = await self._registry.owned(principal, request.path_params["agent_id"])
        body = await parse(request, NewKeyBody)
        issued = await self._auth.create_key(
            principal, body.name, body.scopes, body.expires_in_days, kind="agent", agent_id=agent.id
        )
        return data({**key_view(issued.record), "key": issued.plaintext}, 201)

    async def list_agent_keys(self, request: Request) -> Response:
        """GET /api/v1/agents/{id}/api-keys."""
        principal = await self._caller(request, "keys:read")
        agent = await self._registry.owned(principal, request.path_params["agent_id"])
        return data([key_view(k) for k in await self._auth.list_keys(principal, agent.id)])

    async def revoke_agent_key(self, request: Request) -> Response:
        """DELETE /api/v1/agents/{id}/api-keys/{keyId}."""
        principal = await self._caller(request, "keys:write")
        agent = await self._registry.owned(principal, request.path_params["agent_id"])
        key_id = request.path_params["key_id"]
        await self._auth.revoke_key(principal, key_id, agent.id)
        return data({"id": key_id, "revoked": True})
