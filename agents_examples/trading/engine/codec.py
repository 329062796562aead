"""Positions, closed trades and snapshots as stored documents (lossless) and as API views (Nexgent's names).

Stored documents keep Decimals (the store writes them as strings). Views are what the REST API, the
WebSocket and the A2A skills show: Nexgent's field names, amounts as JSON numbers, times as ISO 8601
(UTC) of the simulated clock. ``…Sol`` fields are in the quote currency (USD on the paper exchange),
so ``currentPriceUsd`` equals ``currentPrice``.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from agents_examples.trading.engine.domain.models import (
    BalanceSnapshot,
    ClosedTrade,
    CloseReason,
    Position,
)
from agents_examples.trading.engine.jsonvalues import number, plain

_DECIMAL_POSITION = {
    f.name for f in fields(Position) if "Decimal" in str(f.type) and f.name != "take_profit_transaction_ids"
}
_DECIMAL_TRADE = {f.name for f in fields(ClosedTrade) if "Decimal" in str(f.type)}


def iso(ms: int | None) -> str | None:
    """Simulated ms as ISO 8601 UTC with milliseconds (None stays None)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def position_record(position: Position) -> dict[str, Any]:
    """A position as stored."""
    return asdict(position)


def position_from_record(doc: dict[str, Any]) -> Position:
    """The position a :func:`position_record` document describes."""
    values: dict[str, Any] = {
        name: (Decimal(value) if name in _DECIMAL_POSITION and value is not None else value)
        for name, value in doc.items()
    }
    values["take_profit_transaction_ids"] = list(values.get("take_profit_transaction_ids") or [])
    return Position(**values)


def trade_record(trade: ClosedTrade) -> dict[str, Any]:
    """A closed trade as stored."""
    return {**asdict(trade), "close_reason": trade.close_reason.value}


def trade_from_record(doc: dict[str, Any]) -> ClosedTrade:
    """The closed trade a :func:`trade_record` document describes."""
    values: dict[str, Any] = {
        name: (Decimal(value) if name in _DECIMAL_TRADE and value is not None else value)
        for name, value in doc.items()
    }
    values["close_reason"] = CloseReason(values["close_reason"])
    return ClosedTrade(**values)


def snapshot_record(snapshot: BalanceSnapshot) -> dict[str, Any]:
    """A balance snapshot as stored."""
    return asdict(snapshot)


def snapshot_from_record(doc: dict[str, Any]) -> BalanceSnapshot:
    """The snapshot a :func:`snapshot_record` document describes."""
    return BalanceSnapshot(
        agent_id=doc["agent_id"],
        timestamp_ms=int(doc["timestamp_ms"]),
        portfolio_balance=Decimal(doc["portfolio_balance"]),
        cash_balance=Decimal(doc["cash_balance"]),
        positions_value=Decimal(doc["positions_value"]),
        unrealized=Decimal(doc["unrealized"]),
    )


def position_view(position: Position) -> dict[str, Any]:
    """The enriched position of Nexgent's WebSocket (``initial_data``, ``position_update``) and REST."""
    price = position.price()
    value = position.value()
    profit = position.profit_loss()
    percent = position.profit_loss_percent()
    return {
        "id": position.id,
        "agentId": position.agent_id,
        "walletAddress": position.wallet_address,
        "tokenAddress": position.token_address,
        "tokenSymbol": position.token_symbol,
        "purchaseTransactionId": position.purchase_transaction_id,
        "signalId": position.signal_id,
        "purchasePrice": number(position.purchase_price),
        "purchasePriceUsd": number(position.purchase_price),
        "purchaseAmount": number(position.purchase_amount),
        "remainingAmount": None if position.remaining_amount is None else number(position.remaining_amount),
        "totalInvestedSol": number(position.total_invested),
        "currentPrice": number(price),
        "currentPriceUsd": number(price),
        "priceChangePercent": round(float(position.change_percent()), 4),
        "positionValueSol": number(value),
        "positionValueUsd": number(value),
        "profitLossSol": number(profit),
        "profitLossUsd": number(profit),
        "profitLossPercent": round(float(percent), 4),
        "realizedProfitSol": number(position.realized_profit),
        "peakPrice": number(position.peak_price or position.purchase_price),
        "currentStopLossPercentage": (
            None
            if position.current_stop_loss_percentage is None
            else number(position.current_stop_loss_percentage)
        ),
        "lastStopLossUpdate": iso(position.last_stop_loss_update_ms),
        "takeProfitLevelsHit": position.take_profit_levels_hit,
        "takeProfitTransactionIds": list(position.take_profit_transaction_ids),
        "lastTakeProfitTime": iso(position.last_take_profit_ms),
        "moonBagActivated": position.moon_bag_activated,
        "moonBagAmount": None if position.moon_bag_amount is None else number(position.moon_bag_amount),
        "dcaCount": 0,
        "createdAt": iso(position.created_ms),
        "updatedAt": iso(position.updated_ms or position.created_ms),
    }


def trade_view(trade: ClosedTrade) -> dict[str, Any]:
    """``AgentHistoricalSwap`` (plus ``positionId``, ``partial`` and ``feesSol``)."""
    return {
        "id": trade.id,
        "agentId": trade.agent_id,
        "walletAddress": trade.wallet_address,
        "positionId": trade.position_id,
        "tokenAddress": trade.token_address,
        "tokenSymbol": trade.token_symbol,
        "amount": number(trade.amount),
        "purchasePrice": number(trade.purchase_price),
        "salePrice": number(trade.sale_price),
        "changePercent": round(float(trade.change_percent), 4),
        "profitLossSol": number(trade.profit_loss),
        "profitLossUsd": number(trade.profit_loss),
        "feesSol": number(trade.fees),
        "purchaseTime": iso(trade.purchase_ms),
        "saleTime": iso(trade.sale_ms),
        "purchaseTransactionId": trade.purchase_transaction_id,
        "saleTransactionId": trade.sale_transaction_id,
        "signalId": trade.signal_id,
        "closeReason": trade.close_reason.value,
        "partial": trade.partial,
        "createdAt": iso(trade.sale_ms),
    }


def snapshot_view(snapshot: BalanceSnapshot) -> dict[str, Any]:
    """One ``balance-history`` point."""
    view: dict[str, Any] = plain(
        {
            "timestamp": iso(snapshot.timestamp_ms),
            "portfolioBalanceSol": snapshot.portfolio_balance,
            "solBalance": snapshot.cash_balance,
            "positionsValueSol": snapshot.positions_value,
            "unrealizedPnLSol": snapshot.unrealized,
        }
    )
    return view
