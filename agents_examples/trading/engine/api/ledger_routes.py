"""The agents' books: ``/agent-balances``, ``/agent-positions``, ``/agent-transactions``,
``/agent-historical-swaps``.

Each list is the caller's agents' rows, or one agent's with ``?agentId=`` (another user's agent is 404
``AGENT_NOT_FOUND``), paginated with ``limit`` and ``offset``; ledgers come newest first.

- ``GET /agent-positions/{agentId}`` is the real Nexgent's spelling of ``?agentId=``; positions are the
  enriched view the WebSocket sends (``currentPrice``, ``profitLossPercent``, ...).
- ``POST /agent-positions/{id}/close`` (the seed) and ``POST /agent-positions/{agentId}/{positionId}/close``
  (the real Nexgent) sell all of an open position at the market now; the optional body ``{"reason":
  "manual"|"stop_loss"|"take_profit"}`` (default ``manual``) is the close reason recorded. The answer is
  the historical swap the sale wrote. A position that is not the caller's is 404 ``POSITION_NOT_FOUND``;
  one already being sold is 409 ``SALE_IN_PROGRESS``; a sale the exchange refuses is 422 with its code.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from agents_examples.trading.engine.api.access import Access, Call, Spec
from agents_examples.trading.engine.api.responses import json_response, page_of, query_text, read_object
from agents_examples.trading.engine.api.views import transaction_view
from agents_examples.trading.engine.codec import position_view, trade_from_record, trade_view
from agents_examples.trading.engine.errors import invalid
from agents_examples.trading.engine.service import EngineService


class LedgerRoutes:
    """Balances, positions, transactions and historical swaps over one service."""

    def __init__(self, service: EngineService) -> None:
        self.service = service

    def specs(self) -> list[Spec]:
        """This resource's routes."""
        return [
            Spec("/agent-balances", ("GET",), self.balances, Access.READ),
            Spec("/agent-positions", ("GET",), self.positions, Access.READ),
            Spec("/agent-positions/{agentId}", ("GET",), self.agent_positions, Access.READ),
            Spec("/agent-positions/{positionId}/close", ("POST",), self.close, Access.SESSION),
            Spec("/agent-positions/{agentId}/{positionId}/close", ("POST",), self.close, Access.SESSION),
            Spec("/agent-transactions", ("GET",), self.transactions, Access.READ),
            Spec("/agent-historical-swaps", ("GET",), self.swaps, Access.READ),
        ]

    async def balances(self, request: Request, call: Call) -> Response:
        page = page_of(request)
        rows = self.service.balances(call.user, query_text(request, "agentId"))
        return json_response(page.of(rows))

    async def positions(self, request: Request, call: Call) -> Response:
        return self._positions(request, call, query_text(request, "agentId"))

    async def agent_positions(self, request: Request, call: Call) -> Response:
        return self._positions(request, call, request.path_params["agentId"])

    def _positions(self, request: Request, call: Call, agent_id: str | None) -> Response:
        page = page_of(request)
        found = self.service.positions(call.user, agent_id)
        return json_response([position_view(p) for p in page.of(found)])

    async def close(self, request: Request, call: Call) -> Response:
        agent_id = request.path_params.get("agentId")
        position_id = request.path_params["positionId"]
        self.service.position(call.user, position_id, agent_id)  # 404 before the body is looked at
        body = await read_object(request, optional=True)
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise invalid("reason must be one of manual, stop_loss, take_profit", field="reason")
        swap = await self.service.close_position(call.user, position_id, agent_id, reason)
        return json_response(swap)

    async def transactions(self, request: Request, call: Call) -> Response:
        page = page_of(request)
        rows = self.service.ledger(
            call.user, "transactions", query_text(request, "agentId"), page.limit, page.offset
        )
        return json_response([transaction_view(row) for row in rows])

    async def swaps(self, request: Request, call: Call) -> Response:
        page = page_of(request)
        agent_id = query_text(request, "agentId")
        rows = self.service.ledger(call.user, "swaps", agent_id, page.limit, page.offset)
        return json_response([trade_view(trade_from_record(row)) for row in rows])
