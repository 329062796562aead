"""The per-agent proxy, ``POST /a2a/agents/{agentId}``: the gateway's JSON-RPC endpoint with every new
message pinned to that agent (its card, served beside it, points here)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.api.jsonrpc import TASK_CREATION, JsonRpcEndpoint
from a2a_gateway.routing.metadata import pinned


class AgentProxy:
    """Routes every message sent through the proxy path to the agent the path names."""

    def __init__(self, rpc: JsonRpcEndpoint) -> None:
        self._rpc = rpc

    async def handle(self, request: Request) -> Response:
        """One JSON-RPC POST through the proxy."""
        agent_id = str(request.path_params["agent_id"])

        def pin(method: str, params: dict[str, Any]) -> dict[str, Any]:
            if method not in TASK_CREATION:
                return params  # reads, cancels and push configs name their task already
            return {**params, "metadata": pinned(params.get("metadata"), agent_id)}

        return await self._rpc.handle(request, pin)
