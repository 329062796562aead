"""The REST views of the engine's account-side records: trading agents, wallets, ledger rows, signals.

Positions, historical swaps and balance-history points have their views in
:mod:`agents_examples.trading.engine.codec` (the WebSocket shares them). A wallet's view never holds its
secret, nor its whole API key: only the key's first :data:`KEY_PREFIX_LENGTH` characters, enough to
tell one exchange account from another. Ledger rows come back from the store with their amounts as
decimal strings (nothing is rounded there); their views turn them into JSON numbers.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Final

from agents_examples.trading.engine.jsonvalues import number, plain
from agents_examples.trading.engine.records import TradingAgent, Wallet

KEY_PREFIX_LENGTH: Final = 12
TRANSACTION_AMOUNTS: Final = frozenset(
    {
        "transactionValueUsd",
        "fees",
        "protocolFeeSol",
        "networkFeeSol",
        "inputAmount",
        "inputPrice",
        "outputAmount",
        "outputPrice",
        "slippage",
        "priceImpact",
    }
)


def agent_view(agent: TradingAgent) -> dict[str, Any]:
    """Nexgent's ``Agent``: ``isActive`` is whether automated trading is on for the agent's mode;
    ``pausedBy`` names the risk limit that switched it off, if one did."""
    return {
        "id": agent.id,
        "userId": agent.user_id,
        "name": agent.name,
        "tradingMode": agent.trading_mode.value,
        "isActive": agent.automated,
        "automatedTradingSimulation": agent.automated_simulation,
        "automatedTradingLive": agent.automated_live,
        "walletAddress": agent.wallet_address,
        "pausedBy": agent.halted,
        "createdAt": agent.created_at,
        "updatedAt": agent.updated_at,
    }


def wallet_view(wallet: Wallet) -> dict[str, Any]:
    """A wallet without its secret (``address`` and Nexgent's ``walletAddress`` are the same)."""
    return {
        "address": wallet.address,
        "walletAddress": wallet.address,
        "walletType": wallet.wallet_type.value,
        "label": wallet.label,
        "agentId": wallet.agent_id,
        "apiKeyPrefix": wallet.api_key[:KEY_PREFIX_LENGTH],
        "createdAt": wallet.created_at,
    }


def _amount(value: object) -> object:
    if isinstance(value, str):
        try:
            return number(Decimal(value))
        except InvalidOperation:
            return value
    return plain(value)


def transaction_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored ``AgentTransaction`` with its amounts as JSON numbers."""
    return {key: _amount(value) if key in TRANSACTION_AMOUNTS else value for key, value in doc.items()}


def signal_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored signal as the API shows it (the publisher's id stays: it is the caller's own)."""
    view: dict[str, Any] = plain(doc)
    return view
