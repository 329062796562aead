"""The engine's account-side records: a trading agent (Nexgent's sense), a wallet, a signal, an execution.

A **trading agent** is a bot owned by one gateway user, with a trading mode, a config and at most one
wallet. Its ``cash`` is the quote currency it may spend: the wallet's cash when it was assigned (or the
smaller ``startingBalance`` asked for), less what it bought, plus what it sold, fees included. The
engine keeps this ledger itself so that deciding a signal needs no call to the exchange; every fill the
exchange reports moves it.

A **wallet** is an account at the paper exchange: its Agent Connect key (``nx_test_…`` for a sandbox,
simulation wallet; ``nx_live_…`` for a live one) and secret, which signs every order end to end. The
secret lives in memory and, encrypted, in the store; no view shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from agents_examples.trading.engine.domain.config import TradingConfig, default_config, parse_config
from agents_examples.trading.engine.domain.models import ZERO
from agents_examples.trading.engine.jsonvalues import plain


class TradingMode(StrEnum):
    """Nexgent's two modes; a wallet's type must match its agent's mode."""

    SIMULATION = "simulation"
    LIVE = "live"


class ExecutionStatus(StrEnum):
    """A signal's outcome for one trading agent."""

    PENDING = "PENDING"
    EXECUTED = "EXECUTED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@dataclass(slots=True)
class TradingAgent:
    """One trading agent and its running book (cash, the day's start, the equity peak)."""

    id: str
    user_id: str
    name: str
    trading_mode: TradingMode
    created_at: str
    updated_at: str
    automated_simulation: bool = True
    automated_live: bool = True
    config: TradingConfig = field(default_factory=default_config)
    wallet_address: str | None = None
    cash: Decimal = ZERO
    fees_paid: Decimal = ZERO
    day_start_ms: int = 0
    day_start_equity: Decimal = ZERO
    peak_equity: Decimal = ZERO
    halted: str | None = None  # the risk limit that paused automated trading, if one did

    @property
    def automated(self) -> bool:
        """Whether automated trading is on for the agent's current mode."""
        if self.trading_mode is TradingMode.LIVE:
            return self.automated_live
        return self.automated_simulation

    def to_record(self) -> dict[str, Any]:
        """Lossless document for the store."""
        return {
            "id": self.id,
            "userId": self.user_id,
            "name": self.name,
            "tradingMode": self.trading_mode.value,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "automatedTradingSimulation": self.automated_simulation,
            "automatedTradingLive": self.automated_live,
            "tradingConfig": plain(self.config.to_doc()),
            "walletAddress": self.wallet_address,
            "cash": self.cash,
            "feesPaid": self.fees_paid,
            "dayStartMs": self.day_start_ms,
            "dayStartEquity": self.day_start_equity,
            "peakEquity": self.peak_equity,
            "halted": self.halted,
        }

    @classmethod
    def from_record(cls, doc: dict[str, Any]) -> TradingAgent:
        """The agent a :meth:`to_record` document describes."""
        return cls(
            id=doc["id"],
            user_id=doc["userId"],
            name=doc["name"],
            trading_mode=TradingMode(doc["tradingMode"]),
            created_at=doc["createdAt"],
            updated_at=doc["updatedAt"],
            automated_simulation=bool(doc["automatedTradingSimulation"]),
            automated_live=bool(doc["automatedTradingLive"]),
            config=parse_config(doc["tradingConfig"]),
            wallet_address=doc.get("walletAddress"),
            cash=Decimal(doc["cash"]),
            fees_paid=Decimal(doc["feesPaid"]),
            day_start_ms=int(doc["dayStartMs"]),
            day_start_equity=Decimal(doc["dayStartEquity"]),
            peak_equity=Decimal(doc["peakEquity"]),
            halted=doc.get("halted"),
        )


@dataclass(slots=True)
class Wallet:
    """An exchange account the engine trades with for one user's agent."""

    address: str
    user_id: str
    wallet_type: TradingMode
    api_key: str
    api_secret: str
    label: str
    created_at: str
    agent_id: str | None = None

    def __repr__(self) -> str:
        return f"Wallet(address={self.address!r}, user_id={self.user_id!r}, agent_id={self.agent_id!r})"

    def to_record(self) -> dict[str, Any]:
        """The stored document (no secret: the store keeps it encrypted beside the document)."""
        return {
            "address": self.address,
            "userId": self.user_id,
            "walletType": self.wallet_type.value,
            "apiKey": self.api_key,
            "label": self.label,
            "createdAt": self.created_at,
            "agentId": self.agent_id,
        }

    @classmethod
    def from_record(cls, doc: dict[str, Any], secret: str) -> Wallet:
        """The wallet a stored document and its decrypted secret describe."""
        return cls(
            address=doc["address"],
            user_id=doc["userId"],
            wallet_type=TradingMode(doc["walletType"]),
            api_key=doc["apiKey"],
            api_secret=secret,
            label=doc["label"],
            created_at=doc["createdAt"],
            agent_id=doc.get("agentId"),
        )


@dataclass(slots=True)
class Execution:
    """A signal's execution record for one trading agent (unique per signal and agent)."""

    signal_id: int
    agent_id: str
    status: ExecutionStatus
    created_at: str
    updated_at: str
    transaction_id: str | None = None
    position_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    def view(self) -> dict[str, Any]:
        """Nexgent's ``SignalExecution``: ``error`` is ``{code, message}`` or None."""
        error = None
        if self.error_code is not None:
            error = {"code": self.error_code, "message": self.error_message or ""}
        return {
            "signalId": self.signal_id,
            "agentId": self.agent_id,
            "status": self.status.value,
            "transactionId": self.transaction_id,
            "positionId": self.position_id,
            "error": error,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    @classmethod
    def from_view(cls, doc: dict[str, Any]) -> Execution:
        """The record a :meth:`view` document describes."""
        error = doc.get("error") or {}
        return cls(
            signal_id=int(doc["signalId"]),
            agent_id=doc["agentId"],
            status=ExecutionStatus(doc["status"]),
            created_at=doc["createdAt"],
            updated_at=doc["updatedAt"],
            transaction_id=doc.get("transactionId"),
            position_id=doc.get("positionId"),
            error_code=error.get("code"),
            error_message=error.get("message"),
        )
