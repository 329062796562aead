"""``/agents``: the caller's trading agents, their configs, performance, balance history and positions.

- ``GET /agents`` (paginated), ``POST /agents`` (201; ``{name, tradingMode?, isActive?,
  automatedTradingSimulation?, automatedTradingLive?, tradingConfig?}``).
- ``GET /agents/{id}``, ``PUT /agents/{id}`` (``PATCH`` too; the fields given change), ``DELETE
  /agents/{id}``: 200 ``{"success": true}`` (a body, so every client can read the answer the same
  way); the agent's records go with it and its wallet is unassigned.
- ``GET /agents/{id}/config``; ``PUT`` and ``PATCH`` merge the body over it (the config itself, or
  ``{"tradingConfig": {...}}``) and answer the whole new config; a wrong field is 400
  ``INVALID_CONFIG`` with ``field`` and every ``errors`` entry.
- ``GET /agents/{id}/performance?timeframe=24h|all`` (default ``all``): the performance figures with
  ``agentId`` and ``timeframe``.
- ``GET /agents/{id}/balance-history?timeframe=24h|all`` (default ``24h``): ``{agentId, timeframe,
  snapshots}``.
- ``GET /agents/{id}/positions``: the agent's open positions (paginated).

Another user's agent is 404 ``AGENT_NOT_FOUND``, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agents_examples.trading.engine.api.access import Access, Call, Spec
from agents_examples.trading.engine.api.responses import json_response, page_of, read_json, read_object
from agents_examples.trading.engine.api.views import agent_view
from agents_examples.trading.engine.codec import position_view, snapshot_view
from agents_examples.trading.engine.service import EngineService


def _timeframe(request: Request, default: str) -> str:
    return request.query_params.get("timeframe") or default


def config_body(doc: Any) -> Any:
    """The config part of a config PUT: the body, or its ``tradingConfig`` when that is all it holds."""
    if isinstance(doc, dict) and set(doc) == {"tradingConfig"}:
        return doc["tradingConfig"]
    return doc


class AgentRoutes:
    """The ``/agents`` routes over one service."""

    def __init__(self, service: EngineService) -> None:
        self.service = service

    def specs(self) -> list[Spec]:
        """This resource's routes."""
        one, config = "/agents/{id}", "/agents/{id}/config"
        return [
            Spec("/agents", ("GET",), self.list_agents, Access.READ),
            Spec("/agents", ("POST",), self.create, Access.SESSION),
            Spec(one, ("GET",), self.get, Access.READ),
            Spec(one, ("PUT", "PATCH"), self.update, Access.SESSION),
            Spec(one, ("DELETE",), self.delete, Access.SESSION),
            Spec(config, ("GET",), self.get_config, Access.READ),
            Spec(config, ("PUT", "PATCH"), self.put_config, Access.SESSION),
            Spec("/agents/{id}/performance", ("GET",), self.performance, Access.READ),
            Spec("/agents/{id}/balance-history", ("GET",), self.balance_history, Access.READ),
            Spec("/agents/{id}/positions", ("GET",), self.positions, Access.READ),
        ]

    async def list_agents(self, request: Request, call: Call) -> Response:
        page = page_of(request)
        return json_response([agent_view(a) for a in page.of(self.service.list_agents(call.user))])

    async def create(self, request: Request, call: Call) -> Response:
        doc = await read_object(request)
        return json_response(agent_view(self.service.create_agent(call.user, doc)), 201)

    async def get(self, request: Request, call: Call) -> Response:
        return json_response(agent_view(self.service.agent(call.user, request.path_params["id"])))

    async def update(self, request: Request, call: Call) -> Response:
        agent_id = request.path_params["id"]
        self.service.agent(call.user, agent_id)  # 404 before the body is looked at
        doc = await read_object(request)
        return json_response(agent_view(self.service.update_agent(call.user, agent_id, doc)))

    async def delete(self, request: Request, call: Call) -> Response:
        self.service.delete_agent(call.user, request.path_params["id"])
        return json_response({"success": True})

    async def get_config(self, request: Request, call: Call) -> Response:
        return json_response(self.service.config(call.user, request.path_params["id"]).to_doc())

    async def put_config(self, request: Request, call: Call) -> Response:
        agent_id = request.path_params["id"]
        self.service.agent(call.user, agent_id)
        doc = config_body(await read_json(request))
        return json_response(self.service.put_config(call.user, agent_id, doc).to_doc())

    async def performance(self, request: Request, call: Call) -> Response:
        agent_id = request.path_params["id"]
        timeframe = _timeframe(request, "all")
        found = self.service.performance(call.user, agent_id, timeframe)
        return json_response({"agentId": agent_id, "timeframe": timeframe, **found.to_doc()})

    async def balance_history(self, request: Request, call: Call) -> Response:
        agent_id = request.path_params["id"]
        timeframe = _timeframe(request, "24h")
        points = self.service.balance_history(call.user, agent_id, timeframe)
        return json_response(
            {"agentId": agent_id, "timeframe": timeframe, "snapshots": [snapshot_view(p) for p in points]}
        )

    async def positions(self, request: Request, call: Call) -> Response:
        page = page_of(request)
        found = self.service.positions(call.user, request.path_params["id"])
        return json_response([position_view(p) for p in page.of(found)])
