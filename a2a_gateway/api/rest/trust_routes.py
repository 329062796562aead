"""/api/v1/trust (seed 002): an agent's trust profile, its history, and rating a task.

Reading needs ``agents:read``, rating ``tasks:write``; a per-agent key is refused both. Only the task's
requester may rate it, once, when it completed, and never the agent's own owner (the service decides;
this module finds the task as the gateway routed it).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.bodies import RestBody, data, page, parse, query_int
from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import TaskNotFound
from a2a_gateway.registry.models import Agent
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.routing.ports import CallLog
from a2a_gateway.tasks.service import TaskService
from a2a_gateway.trust.models import RatedTask
from a2a_gateway.trust.service import TrustService


class RateBody(RestBody):
    """POST /api/v1/trust/{agentId}/rate body; the service checks rating (an integer 1-5) and comment."""

    task_id: str = Field(min_length=1, max_length=64)
    rating: Any = None
    comment: Any = None


class TrustApi:
    """The trust routes over the trust service; tasks are found through their routed-call records."""

    def __init__(
        self,
        authn: Authenticator,
        trust: TrustService,
        registry: RegistryService,
        tasks: TaskService,
        calls: CallLog,
    ) -> None:
        self._authn = authn
        self._trust = trust
        self._registry = registry
        self._tasks = tasks
        self._calls = calls

    def routes(self) -> list[BaseRoute]:
        """The route table of this resource."""
        one = "/api/v1/trust/{agent_id}"
        return [
            Route(one, self.profile, methods=["GET"]),
            Route(one + "/history", self.history, methods=["GET"]),
            Route(one + "/rate", self.rate, methods=["POST"]),
        ]

    async def _caller(self, request: Request, scope: str) -> Principal:
        principal = await self._authn.resolve(request, required=True)
        principal.require(scope)
        return principal

    async def profile(self, request: Request) -> Response:
        """GET /api/v1/trust/{agentId}: the score now, its components, evidence, parameters, recent events."""
        await self._caller(request, "agents:read")
        agent = await self._registry.get(request.path_params["agent_id"])
        return data((await self._trust.get(agent.id)).to_dict())

    async def history(self, request: Request) -> Response:
        """GET /api/v1/trust/{agentId}/history?limit&offset: the agent's trust events, newest first."""
        await self._caller(request, "agents:read")
        agent = await self._registry.get(request.path_params["agent_id"])
        limit = query_int(request, "limit", 50, 1, 100)
        offset = query_int(request, "offset", 0, 0, 1_000_000)
        events = await self._trust.history(agent.id, limit, offset)
        return page([e.to_dict() for e in events], {"limit": limit, "offset": offset})

    async def rate(self, request: Request) -> Response:
        """POST /api/v1/trust/{agentId}/rate {taskId, rating, comment}: 201 and the rating's event."""
        principal = await self._caller(request, "tasks:write")
        body = await parse(request, RateBody)
        agent = await self._registry.get(request.path_params["agent_id"])
        event = await self._trust.rate(
            agent.id,
            body.task_id,
            principal.id,
            rating=body.rating,
            comment=body.comment,
            task_info=await self._rated_task(agent, body.task_id),
        )
        return data(event.to_dict(), 201)

    async def _rated_task(self, agent: Agent, task_id: str) -> RatedTask | None:
        """The task as routed to ``agent``: its requester (the gateway task's owner) and its state now."""
        call = await self._calls.get(task_id)
        if call is None or call.agent_id != agent.id:
            return None
        try:
            task = await self._tasks.get_routed(agent.id, task_id, 0)
        except TaskNotFound:
            return None
        return RatedTask(
            task_id=task_id,
            agent_id=agent.id,
            requester=call.requester,
            agent_owner=agent.owner_id,
            state=task.status.state,
        )
