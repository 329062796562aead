"""``/wallets``: the caller's exchange accounts and which trading agent each one serves.

- ``GET /wallets`` (paginated) and ``GET /wallets/agent/{agentId}`` (the real Nexgent's: the wallets
  of one agent): views without the secret, the API key shown by its first 12 characters only.
- ``POST /wallets`` (201): ``{apiKey, apiSecret, label?}`` of an Agent Connect account (``nx_test_``:
  simulation, ``nx_live_``: live), checked with the exchange; without keys, a new sandbox account when
  the engine can open one.
- ``POST /wallets/assign`` ``{agentId, walletAddress, walletType?, startingBalance?}``: the agent gets
  the wallet and is funded with the account's cash (or ``startingBalance`` of it).
- ``POST /wallets/reset`` ``{agentId}`` or ``{walletAddress}``, and ``POST /wallets/{walletAddress}/reset``
  (the real Nexgent's): the wallet is unassigned and the agent's positions, balances and ledgers cleared
  (the exchange account itself is untouched).

Assign and reset answer ``{"success": true, "agent": ..., "wallet": ...}`` as they now are.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from agents_examples.trading.engine.api.access import Access, Call, Spec
from agents_examples.trading.engine.api.responses import json_response, page_of, read_object
from agents_examples.trading.engine.api.views import agent_view, wallet_view
from agents_examples.trading.engine.records import TradingAgent, Wallet
from agents_examples.trading.engine.service import EngineService


def _outcome(agent: TradingAgent, wallet: Wallet) -> Response:
    return json_response({"success": True, "agent": agent_view(agent), "wallet": wallet_view(wallet)})


class WalletRoutes:
    """The wallet routes over one service."""

    def __init__(self, service: EngineService) -> None:
        self.service = service

    def specs(self) -> list[Spec]:
        """This resource's routes."""
        return [
            Spec("/wallets", ("GET",), self.list_wallets, Access.READ),
            Spec("/wallets", ("POST",), self.add, Access.SESSION),
            Spec("/wallets/agent/{agentId}", ("GET",), self.of_agent, Access.READ),
            Spec("/wallets/assign", ("POST",), self.assign, Access.SESSION),
            Spec("/wallets/reset", ("POST",), self.reset, Access.SESSION),
            Spec("/wallets/{walletAddress}/reset", ("POST",), self.reset_one, Access.SESSION),
        ]

    async def list_wallets(self, request: Request, call: Call) -> Response:
        page = page_of(request)
        return json_response([wallet_view(w) for w in page.of(self.service.list_wallets(call.user))])

    async def of_agent(self, request: Request, call: Call) -> Response:
        agent = self.service.agent(call.user, request.path_params["agentId"])
        mine = [w for w in self.service.list_wallets(call.user) if w.agent_id == agent.id]
        return json_response([wallet_view(w) for w in mine])

    async def add(self, request: Request, call: Call) -> Response:
        doc = await read_object(request, optional=True)
        return json_response(wallet_view(await self.service.add_wallet(call.user, doc)), 201)

    async def assign(self, request: Request, call: Call) -> Response:
        doc = await read_object(request)
        agent = await self.service.assign_wallet(call.user, doc)
        return _outcome(agent, self.service.wallet(call.user, agent.wallet_address or ""))

    async def reset(self, request: Request, call: Call) -> Response:
        doc = await read_object(request)
        return self._reset(call, doc)

    async def reset_one(self, request: Request, call: Call) -> Response:
        address = request.path_params["walletAddress"]
        self.service.wallet(call.user, address)  # 404 for a wallet that is not the caller's
        return self._reset(call, {"walletAddress": address})

    def _reset(self, call: Call, doc: dict[str, object]) -> Response:
        address = doc.get("walletAddress")
        if not isinstance(address, str):
            agent_id = doc.get("agentId")
            if isinstance(agent_id, str):
                address = self.service.agent(call.user, agent_id).wallet_address
        agent = self.service.reset_wallet(call.user, doc)
        wallet = self.service.wallet(call.user, address) if isinstance(address, str) else None
        return json_response(
            {
                "success": True,
                "agent": agent_view(agent),
                "wallet": None if wallet is None else wallet_view(wallet),
            }
        )
