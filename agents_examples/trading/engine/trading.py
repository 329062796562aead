"""The trader: the engine's working book in memory, and every trade it makes through the exchange port.

**Buys.** A decided entry becomes a market buy through :class:`ExchangePort` (in production the
exchange's ``place-order`` skill called through the gateway as an A2A task, signed with the wallet's
secret). A ``PRICE_IMPACT_TOO_HIGH`` refusal is tried again at 90, 80 and 70 % of the size, as Nexgent
does. A fill opens the position, writes the ``SWAP`` transaction, moves the agent's cash and settles the
execution record, in one store batch.

**Exits.** Each price tick is applied to every open position in its token (:func:`exits.on_price`): the
first exit rule that fires becomes a market sell. A sell that the exchange refuses, or cannot be reached
for, is tried again on a later tick; at most one sell per position is in flight (``SALE_IN_PROGRESS``).
A catch-up tick after a gap in the stream replays the gap's low, then its high, then the current price,
so a stop-loss crossed while the stream was down still fires.

**Risk limits** are checked on every tick for the agents holding the token, and before every entry. A
breach pauses the agent's automated trading for its mode, publishes a ``risk_event`` and, when
``closePositionsOnBreach`` is set, sells everything. A daily-loss pause lifts at the next simulated
day; a drawdown pause needs the owner to switch trading back on.

**Time** is the exchange's simulated clock as the ticks and fills report it: it drives stale trades,
the day boundary and the hourly balance snapshots.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, Final, Protocol
from uuid import uuid4

from agents_examples.trading.engine.codec import (
    iso,
    position_from_record,
    position_record,
    position_view,
    snapshot_record,
    trade_record,
)
from agents_examples.trading.engine.domain import exits
from agents_examples.trading.engine.domain.entry import Book, risk_breach, shrink
from agents_examples.trading.engine.domain.models import (
    ZERO,
    BalanceSnapshot,
    ClosedTrade,
    CloseReason,
    Position,
)
from agents_examples.trading.engine.errors import EngineError
from agents_examples.trading.engine.events import PositionEvents, envelope
from agents_examples.trading.engine.exchange_link import (
    ExchangeUnavailable,
    Listing,
    OrderOutcome,
    Tick,
    WalletKeys,
)
from agents_examples.trading.engine.jsonvalues import number, plain
from agents_examples.trading.engine.records import (
    Execution,
    ExecutionStatus,
    TradingAgent,
    Wallet,
)
from agents_examples.trading.engine.store import EngineStore

log = logging.getLogger(__name__)

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
QTY: Final = Decimal("0.00000001")
QUOTE_SYMBOL: Final = "USD"


class ExchangePort(Protocol):
    """What the trader needs from the exchange (the gateway-routed :class:`ExchangeLink` in production)."""

    async def listings(self) -> list[Listing]: ...

    async def portfolio(self, keys: WalletKeys) -> dict[str, Any]: ...

    async def place_order(self, keys: WalletKeys, order: dict[str, Any]) -> OrderOutcome: ...


@dataclass
class Counters:
    """What ``GET /metrics`` exposes (Nexgent's metric names where it has them)."""

    signals: int = 0
    signal_seconds: float = 0.0
    evaluations: int = 0
    trades: dict[str, int] = field(default_factory=dict)  # "buy:EXECUTED" -> n
    exits: dict[str, int] = field(default_factory=dict)  # close reason -> n
    ticks: int = 0
    risk_breaches: int = 0

    def trade(self, side: str, status: str) -> None:
        key = f"{side}:{status}"
        self.trades[key] = self.trades.get(key, 0) + 1


def now_iso(wall: Callable[[], float]) -> str:
    """Wall time (seconds) as ISO 8601 UTC."""
    return iso(int(wall() * 1000)) or ""


class Trader:
    """The working book (agents, wallets, positions, prices) and the trades made on it."""

    def __init__(
        self,
        store: EngineStore,
        exchange: ExchangePort,
        hub: PositionEvents,
        *,
        wall: Callable[[], float],
    ) -> None:
        self.store = store
        self.exchange = exchange
        self.hub = hub
        self.wall = wall
        self.agents: dict[str, TradingAgent] = {}
        self.wallets: dict[str, Wallet] = {}
        self.positions: dict[str, dict[str, Position]] = {}  # agent id -> token address -> position
        self.pending: dict[str, set[str]] = {}  # agent id -> tokens with a buy in flight
        self.selling: set[str] = set()  # position ids with a sell in flight
        self.listings: dict[str, Listing] = {}  # token address -> listing
        self.by_symbol: dict[str, str] = {}  # symbol (upper) -> token address
        self.prices: dict[str, Decimal] = {}
        self.price_ms: dict[str, int] = {}
        self.now_ms = 0
        self.counters = Counters()
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seq = itertools.count(1)

    # ------------------------------------------------------------------------------ loading

    def load(self) -> None:
        """Read the book back from the store (start-up)."""
        for doc in self.store.docs("trading_agents", order="rowid"):
            agent = TradingAgent.from_record(doc)
            self.agents[agent.id] = agent
        for doc, secret in self.store.wallets():
            wallet = Wallet.from_record(doc, secret)
            self.wallets[wallet.address] = wallet
        for doc in self.store.docs("positions", order="rowid"):
            position = position_from_record(doc)
            self.positions.setdefault(position.agent_id, {})[position.token_address] = position
            self.now_ms = max(self.now_ms, position.updated_ms, position.created_ms)

    def save_agent(self, agent: TradingAgent) -> None:
        """Write ``agent`` through to the store."""
        self.store.put("trading_agents", {"id": agent.id}, agent.to_record(), user_id=agent.user_id)

    def save_wallet(self, wallet: Wallet) -> None:
        """Write ``wallet`` (its secret sealed) through to the store."""
        self.store.put_wallet(wallet.address, wallet.user_id, wallet.api_secret, wallet.to_record())

    # ------------------------------------------------------------------------------ book

    def lock(self, agent_id: str) -> asyncio.Lock:
        """The lock serialising ``agent_id``'s buys (one entry decision at a time)."""
        found = self._locks.get(agent_id)
        if found is None:
            found = self._locks[agent_id] = asyncio.Lock()
        return found

    def open_positions(self, agent_id: str) -> list[Position]:
        """``agent_id``'s open positions, oldest first."""
        return sorted(self.positions.get(agent_id, {}).values(), key=lambda p: (p.created_ms, p.id))

    def equity(self, agent: TradingAgent) -> Decimal:
        """Cash plus the held tokens at their latest prices."""
        return agent.cash + sum((p.value() for p in self.positions.get(agent.id, {}).values()), ZERO)

    def book(self, agent: TradingAgent) -> Book:
        """What an entry decision reads about ``agent``."""
        held = self.positions.get(agent.id, {})
        tokens = frozenset(held) | frozenset(self.pending.get(agent.id, ()))
        equity = self.equity(agent)
        return Book(
            cash=agent.cash,
            open_tokens=tokens,
            open_count=len(held) + len(self.pending.get(agent.id, ())),
            equity=equity,
            day_start_equity=agent.day_start_equity,
            peak_equity=max(agent.peak_equity, equity),
        )

    def keys(self, agent: TradingAgent) -> WalletKeys:
        """The wallet keys of ``agent`` (EngineError when it has none)."""
        wallet = self.wallets.get(agent.wallet_address or "")
        if wallet is None:
            raise EngineError(409, "WALLET_NOT_FOUND", "The agent has no wallet assigned")
        return WalletKeys(wallet.api_key, wallet.api_secret)

    def listing(self, token_or_symbol: str) -> Listing | None:
        """The listing of a token address or symbol (case-insensitive), if the exchange lists it."""
        found = self.listings.get(token_or_symbol)
        if found is not None:
            return found
        address = self.by_symbol.get(token_or_symbol.upper())
        if address is None:
            lowered = token_or_symbol.lower()
            address = next((a for a in self.listings if a.lower() == lowered), None)
        return None if address is None else self.listings.get(address)

    async def refresh_listings(self) -> None:
        """Learn the exchange's instruments and their prices (market-data through the gateway)."""
        for listing in await self.exchange.listings():
            self.listings[listing.token_address] = listing
            self.by_symbol[listing.symbol.upper()] = listing.token_address
            self.prices.setdefault(listing.token_address, listing.price)

    def spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``work`` in the background, kept until it ends."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for the background trades in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop: cancel background trades."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------------------ buying

    def settle(
        self,
        execution: Execution,
        status: ExecutionStatus,
        code: str | None,
        message: str | None,
        *,
        buy: bool = True,
    ) -> None:
        """Give ``execution`` its outcome (written with whatever else is in the current batch); a buy's
        outcome is counted for the metrics here (a sell counts itself in :meth:`sell`)."""
        execution.status = status
        execution.error_code = code
        execution.error_message = message
        execution.updated_at = now_iso(self.wall)
        self.store.put(
            "executions",
            {"signal_id": execution.signal_id, "agent_id": execution.agent_id},
            execution.view(),
        )
        if buy:
            self.counters.trade("buy", status.value)

    async def buy(
        self,
        agent: TradingAgent,
        execution: Execution,
        listing: Listing,
        size: Decimal,
        signal_id: int | None,
    ) -> None:
        """Buy ``size`` (quote) of ``listing`` for ``agent`` and settle ``execution`` with the outcome."""
        try:
            await self._buy(agent, execution, listing, size, signal_id)
        except ExchangeUnavailable as exc:
            log.warning("buy for agent %s not placed: %s", agent.id, exc)
            with self.store.batch():
                self.settle(execution, ExecutionStatus.FAILED, "EXCHANGE_UNAVAILABLE", str(exc)[:300])
        except EngineError as refused:  # e.g. the wallet was reset while the buy waited
            with self.store.batch():
                self.settle(execution, ExecutionStatus.FAILED, refused.code, refused.message)
        except Exception:
            log.exception("buy for agent %s failed", agent.id)
            with self.store.batch():
                self.settle(
                    execution, ExecutionStatus.FAILED, "INTERNAL_ERROR", "the buy failed; see the log"
                )
        finally:
            self.pending.get(agent.id, set()).discard(listing.token_address)

    async def _buy(
        self,
        agent: TradingAgent,
        execution: Execution,
        listing: Listing,
        size: Decimal,
        signal_id: int | None,
    ) -> None:
        keys = self.keys(agent)
        price = self.prices.get(listing.token_address, listing.price)
        tag = f"{signal_id if signal_id is not None else 'm'}-{agent.id[:8]}"
        outcome: OrderOutcome | None = None
        for attempt, amount in enumerate([size, *shrink(size)]):
            quantity = (amount / price).quantize(QTY, rounding=ROUND_DOWN) if price > 0 else ZERO
            if quantity <= 0:
                break
            order = {
                "symbol": listing.symbol,
                "side": "buy",
                "type": "market",
                "quantity": number(quantity),
                "clientOrderId": f"b{tag}-{attempt}",
            }
            outcome = await self.exchange.place_order(keys, order)
            if outcome.accepted or outcome.code != "PRICE_IMPACT_TOO_HIGH":
                break
        with self.store.batch():
            if outcome is None:
                self.settle(
                    execution, ExecutionStatus.FAILED, "POSITION_SIZE_TOO_SMALL", "the size buys nothing"
                )
                return
            if not outcome.accepted or outcome.filled <= 0 or outcome.average is None:
                code = outcome.code or "ORDER_NOT_FILLED"
                self.settle(
                    execution, ExecutionStatus.FAILED, code, outcome.message or "the order was not filled"
                )
                return
            position = self._open(agent, listing, outcome, signal_id)
            execution.transaction_id = position.purchase_transaction_id
            execution.position_id = position.id
            self.settle(execution, ExecutionStatus.EXECUTED, None, None)
        self.hub.publish(
            agent.id,
            envelope(
                "position_update", {"eventType": "position_created", "position": position_view(position)}
            ),
        )

    def _open(
        self, agent: TradingAgent, listing: Listing, outcome: OrderOutcome, signal_id: int | None
    ) -> Position:
        average = outcome.average or ZERO
        timestamp = _order_ms(outcome) or self.now_ms
        self.now_ms = max(self.now_ms, timestamp)
        spent = outcome.cost + outcome.fee
        transaction_id = str(uuid4())
        position = Position(
            id=str(uuid4()),
            agent_id=agent.id,
            wallet_address=agent.wallet_address or "",
            token_address=listing.token_address,
            token_symbol=listing.symbol,
            purchase_price=average,
            purchase_amount=outcome.filled,
            total_invested=spent,
            created_ms=timestamp,
            purchase_transaction_id=transaction_id,
            signal_id=signal_id,
            peak_price=average,
            current_price=self.prices.get(listing.token_address, average),
            updated_ms=timestamp,
        )
        if agent.config.stop_loss.enabled:
            position.current_stop_loss_percentage = agent.config.stop_loss.default_percentage
        agent.cash -= spent
        agent.fees_paid += outcome.fee
        self.positions.setdefault(agent.id, {})[listing.token_address] = position
        self._transaction(
            agent, transaction_id, outcome, listing, "buy", signal_id=signal_id, timestamp=timestamp
        )
        self.store.put("positions", {"id": position.id}, position_record(position), agent_id=agent.id)
        self.save_agent(agent)
        return position

    def _transaction(
        self,
        agent: TradingAgent,
        transaction_id: str,
        outcome: OrderOutcome,
        listing: Listing,
        side: str,
        *,
        signal_id: int | None,
        timestamp: int,
        take_profit: bool = False,
    ) -> None:
        average = outcome.average or ZERO
        quote_leg = {"mint": QUOTE_SYMBOL, "symbol": QUOTE_SYMBOL, "price": Decimal(1)}
        token_leg = {"mint": listing.token_address, "symbol": listing.symbol, "price": average}
        if side == "buy":
            legs = (quote_leg, outcome.cost + outcome.fee, token_leg, outcome.filled)
        else:
            legs = (token_leg, outcome.filled, quote_leg, outcome.cost - outcome.fee)
        spent_leg, spent, got_leg, got = legs
        doc = {
            "id": transaction_id,
            "agentId": agent.id,
            "walletAddress": agent.wallet_address,
            "transactionType": "SWAP",
            "transactionValueUsd": outcome.cost,
            "transactionTime": iso(timestamp),
            "destinationAddress": None,
            "signalId": signal_id,
            "fees": outcome.fee,
            "protocolFeeSol": outcome.fee,
            "networkFeeSol": ZERO,
            "inputMint": spent_leg["mint"],
            "inputSymbol": spent_leg["symbol"],
            "inputAmount": spent,
            "inputPrice": spent_leg["price"],
            "outputMint": got_leg["mint"],
            "outputSymbol": got_leg["symbol"],
            "outputAmount": got,
            "outputPrice": got_leg["price"],
            "slippage": None,
            "priceImpact": None,
            "isDca": False,
            "isTakeProfit": take_profit,
            "transactionHash": None,
            "orderId": outcome.order_id,
            "side": side,
        }
        self.store.append("transactions", transaction_id, agent.id, doc)

    def deposit(self, agent: TradingAgent, amount: Decimal) -> None:
        """Fund ``agent`` with ``amount`` of quote (a ``DEPOSIT`` transaction)."""
        transaction_id = str(uuid4())
        agent.cash += amount
        equity = self.equity(agent)
        agent.day_start_equity = equity
        agent.day_start_ms = self.now_ms - self.now_ms % DAY_MS
        agent.peak_equity = equity
        doc = {
            "id": transaction_id,
            "agentId": agent.id,
            "walletAddress": agent.wallet_address,
            "transactionType": "DEPOSIT",
            "transactionValueUsd": amount,
            "transactionTime": now_iso(self.wall),
            "inputMint": QUOTE_SYMBOL,
            "inputSymbol": QUOTE_SYMBOL,
            "inputAmount": amount,
            "outputMint": QUOTE_SYMBOL,
            "outputSymbol": QUOTE_SYMBOL,
            "outputAmount": amount,
            "fees": ZERO,
            "transactionHash": None,
        }
        self.store.append("transactions", transaction_id, agent.id, doc)
        self.save_agent(agent)

    # ------------------------------------------------------------------------------ selling

    async def sell(self, agent: TradingAgent, position: Position, order: exits.ExitOrder) -> ClosedTrade:
        """Sell ``order.amount`` of ``position``; the closed trade (EngineError when refused)."""
        if position.id in self.selling:
            raise EngineError(409, "SALE_IN_PROGRESS", "A sale of this position is already in progress")
        self.selling.add(position.id)
        try:
            return await self._sell(agent, position, order)
        finally:
            self.selling.discard(position.id)

    async def _sell(self, agent: TradingAgent, position: Position, order: exits.ExitOrder) -> ClosedTrade:
        keys = self.keys(agent)
        held = position.held
        amount = held if order.full else min(order.amount, held)
        amount = amount.quantize(QTY, rounding=ROUND_DOWN)
        if amount <= 0:
            raise EngineError(422, "POSITION_NOT_FOUND", "Nothing is left to sell in this position")
        step = (
            "f"
            if order.full
            else str(order.level if order.level is not None else position.take_profit_levels_hit)
        )
        request = {
            "symbol": position.token_symbol,
            "side": "sell",
            "type": "market",
            "quantity": number(amount),
            "clientOrderId": f"s{position.id[:18]}-{step}-{next(self._seq)}",
        }
        try:
            outcome = await self.exchange.place_order(keys, request)
        except ExchangeUnavailable as exc:
            self.counters.trade("sell", "FAILED")
            raise EngineError(502, "EXCHANGE_UNAVAILABLE", str(exc)[:300]) from None
        if not outcome.accepted or outcome.filled <= 0 or outcome.average is None:
            self.counters.trade("sell", "FAILED")
            raise EngineError(
                422,
                outcome.code or "ORDER_NOT_FILLED",
                outcome.message or "the exchange did not fill the sell",
            )
        self.counters.trade("sell", "EXECUTED")
        self.counters.exits[order.reason.value] = self.counters.exits.get(order.reason.value, 0) + 1
        return self._record_sale(agent, position, order, outcome)

    def _record_sale(
        self, agent: TradingAgent, position: Position, order: exits.ExitOrder, outcome: OrderOutcome
    ) -> ClosedTrade:
        sold = outcome.filled
        proceeds = outcome.cost - outcome.fee
        timestamp = _order_ms(outcome) or self.now_ms
        self.now_ms = max(self.now_ms, timestamp)
        transaction_id = str(uuid4())
        listing = self.listings.get(position.token_address) or Listing(
            position.token_symbol,
            position.token_address,
            position.token_symbol,
            outcome.average or ZERO,
            QUOTE_SYMBOL,
        )
        full = order.full or sold >= position.held
        with self.store.batch():
            self._transaction(
                agent,
                transaction_id,
                outcome,
                listing,
                "sell",
                signal_id=position.signal_id,
                timestamp=timestamp,
                take_profit=order.reason is CloseReason.TAKE_PROFIT,
            )
            trade = exits.closed_trade(
                position,
                order.reason,
                sold,
                outcome.average or ZERO,
                proceeds,
                outcome.fee,
                timestamp,
                str(uuid4()),
                transaction_id,
                not full,
            )
            agent.cash += proceeds
            agent.fees_paid += outcome.fee
            self.store.append("swaps", trade.id, agent.id, trade_record(trade))
            if full:
                self.positions.get(agent.id, {}).pop(position.token_address, None)
                self.store.delete("positions", id=position.id)
            else:
                exits.apply_sale(position, order, sold, proceeds, timestamp, transaction_id)
                self.store.put("positions", {"id": position.id}, position_record(position), agent_id=agent.id)
            self.save_agent(agent)
        event: dict[str, Any]
        if full:
            event = {
                "eventType": "position_closed",
                "positionId": position.id,
                "closeReason": order.reason.value,
            }
        else:
            event = {"eventType": "position_updated", "position": position_view(position)}
        self.hub.publish(agent.id, envelope("position_update", event))
        return trade

    async def _auto_sell(self, agent: TradingAgent, position: Position, order: exits.ExitOrder) -> None:
        try:
            await self.sell(agent, position, order)
        except EngineError as refused:
            # Tried again on a later tick (the rule still holds then).
            log.warning("exit %s of position %s not done: %s", order.reason.value, position.id, refused.code)
        except Exception:
            log.exception("exit %s of position %s failed", order.reason.value, position.id)

    # ------------------------------------------------------------------------------ ticks

    async def on_ticks(self, ticks: Iterable[Tick]) -> None:
        """Apply price ticks: exits, risk limits, snapshots, then one price batch per following agent."""
        touched: dict[str, dict[str, dict[str, Any]]] = {}
        previous = self.now_ms
        for tick in ticks:
            self.counters.ticks += 1
            address = tick.token_address or self.by_symbol.get(tick.symbol.upper(), "")
            if not address:
                continue
            self.prices[address] = tick.price
            self.price_ms[address] = tick.timestamp_ms
            self.now_ms = max(self.now_ms, tick.timestamp_ms)
            path = (
                exits.catch_up_path(tick.low, tick.high, tick.price)
                if tick.catch_up and tick.low is not None and tick.high is not None
                else [tick.price]
            )
            update = {"tokenAddress": address, "price": number(tick.price), "priceUsd": number(tick.price)}
            for agent_id, held in self.positions.items():
                position = held.get(address)
                if position is None:
                    continue
                touched.setdefault(agent_id, {})[address] = update
                agent = self.agents.get(agent_id)
                if agent is None:
                    continue
                self._apply(agent, position, path)
        self._roll(previous)
        for agent_id in touched:
            agent = self.agents.get(agent_id)
            if agent is not None:
                self._check_risk(agent)
        for agent_id, updates in touched.items():
            if self.hub.followed(agent_id):
                self.hub.publish(
                    agent_id, envelope("price_update_batch", {"updates": list(updates.values())})
                )

    def _apply(self, agent: TradingAgent, position: Position, path: list[Decimal]) -> None:
        before = (position.peak_price, position.current_stop_loss_percentage)
        order = None
        for price in path:
            order = exits.on_price(position, price, self.now_ms, agent.config)
            if order is not None:
                break
        if (position.peak_price, position.current_stop_loss_percentage) != before:
            self.store.put("positions", {"id": position.id}, position_record(position), agent_id=agent.id)
        if order is not None and position.id not in self.selling:
            self.spawn(self._auto_sell(agent, position, order))

    def _roll(self, previous_ms: int) -> None:
        """Day boundary (lift daily-loss pauses, new day start) and hourly snapshots."""
        now = self.now_ms
        if now <= 0:
            return
        new_day = previous_ms and now // DAY_MS != previous_ms // DAY_MS
        new_hour = previous_ms and now // HOUR_MS != previous_ms // HOUR_MS
        if not (new_day or new_hour):
            return
        with self.store.batch():
            for agent in self.agents.values():
                if agent.wallet_address is None:
                    continue
                equity = self.equity(agent)
                if new_day:
                    agent.day_start_ms = now - now % DAY_MS
                    agent.day_start_equity = equity
                    if agent.halted == "DAILY_LOSS_LIMIT":
                        agent.halted = None
                        self._set_automated(agent, True)
                    self.save_agent(agent)
                if new_hour:
                    self.snapshot(agent, now - now % HOUR_MS)

    def snapshot(self, agent: TradingAgent, timestamp_ms: int) -> BalanceSnapshot:
        """Record ``agent``'s balance at ``timestamp_ms``."""
        held = self.positions.get(agent.id, {}).values()
        value = sum((p.value() for p in held), ZERO)
        unrealized = sum((p.unrealized() for p in held), ZERO)
        snapshot = BalanceSnapshot(agent.id, timestamp_ms, agent.cash + value, agent.cash, value, unrealized)
        self.store.put(
            "snapshots", {"agent_id": agent.id, "timestamp_ms": timestamp_ms}, snapshot_record(snapshot)
        )
        return snapshot

    def _set_automated(self, agent: TradingAgent, on: bool) -> None:
        if agent.trading_mode.value == "live":
            agent.automated_live = on
        else:
            agent.automated_simulation = on

    def _check_risk(self, agent: TradingAgent) -> None:
        equity = self.equity(agent)
        agent.peak_equity = max(agent.peak_equity, equity)
        if agent.halted is not None or not agent.automated:
            return
        breach = risk_breach(agent.config.risk_limits, self.book(agent))
        if breach is None:
            return
        self.halt(agent, breach.code, breach.message)

    def halt(self, agent: TradingAgent, code: str, message: str) -> None:
        """Pause ``agent``'s automated trading for a breached risk limit (and sell out if configured)."""
        self.counters.risk_breaches += 1
        agent.halted = code
        self._set_automated(agent, False)
        with self.store.batch():
            self.save_agent(agent)
        limits = agent.config.risk_limits
        limit = limits.daily_loss_limit if code == "DAILY_LOSS_LIMIT" else limits.max_drawdown_percent
        self.hub.publish(
            agent.id,
            envelope(
                "risk_event",
                plain({"code": code, "message": message, "limit": limit, "value": self.equity(agent)}),
            ),
        )
        log.info("agent %s paused: %s", agent.id, code)
        if limits.close_positions_on_breach:
            for position in self.open_positions(agent.id):
                if position.id not in self.selling:
                    sell_all = exits.ExitOrder(CloseReason.RISK_LIMIT, position.held, True)
                    self.spawn(self._auto_sell(agent, position, sell_all))


def _order_ms(outcome: OrderOutcome) -> int | None:
    order = outcome.order or {}
    stamp = order.get("lastTradeTimestamp") or order.get("timestamp")
    return stamp if isinstance(stamp, int) and stamp > 0 else None
