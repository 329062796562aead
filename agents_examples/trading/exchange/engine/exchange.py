"""The paper exchange's engine: accounts, a price-indexed book per symbol, the fill model, breakers.

Pure Python, no I/O, no wall time: every method that depends on time takes the simulated time, so the
same market data and the same calls give the same orders, fills, events and snapshot (replay
determinism). Amounts are integers throughout (see :mod:`.config` for the units).

**Market data.** A bar is replayed as 4 ticks, O→L→H→C for an up bar and O→H→L→C for a down bar, the
bar itself known at its first tick. Feed it either tick by tick, :meth:`Exchange.on_bar` at the bar's
first tick (it is the open tick, at ``bar.ts_ms``) then :meth:`Exchange.on_tick` for the other three, or
a whole bar at once with :meth:`Exchange.replay_bar` (ticks at ``ts_ms + k x span_ms // 4``, k = 0..3).
Market data must come in time order (across symbols too). ``place`` and ``cancel`` take ``now_ms``; a
time before the engine's last one counts as that last one.

**Market orders** (and marketable limit orders, below) fill at once, in full, as takers, at
``ref x (1 ± (slippageBps / 1e4 + impactCoefficient x amount / barVolume))``: ``ref`` is the last tick's
price and ``barVolume`` the current bar's volume, so ``amount / barVolume`` is the order's notional over
the bar's quote volume, both at ``ref``. Market orders do not use the limit orders' volume share.

**Limit orders** rest in the book and are matched only against ticks after their placement:

- a buy crosses at a tick at or below its limit, a sell at a tick at or above it (over a whole bar the
  ticks include its low and high, so: buy when ``low <= limit``, sell when ``high >= limit``);
- **fill price**: the limit itself when the price moved through it since the bar's previous tick (the
  path between a bar's ticks is continuous); the tick's own price, which is better, when there was no
  such move: at the bar's open tick (the bar opened through the limit; bars are not continuous with each
  other) or when the order was placed already through the price;
- each bar, the resting orders of one side of one symbol fill together at most ``participationRate x
  barVolume`` (rounded down), in price then time priority, so the rest stays ``open`` with
  ``remaining``;
- an order still open ``unfilledTimeoutSeconds`` after its placement is canceled (reason
  ``UNFILLED_TIMEOUT``), at that exact simulated time, keeping what it filled;
- a limit order that is marketable when placed (a buy at or above the last price, a sell at or below)
  fills at once as a market order would, when that price is within its limit; otherwise it rests.

**Money and rounding, always for the exchange.** A taker's price is rounded to a price unit up for a buy,
down for a sell. An order's cost is ``ceil(Σ amount x price)`` for a buy and ``floor(...)`` for a sell,
over its fills together (each trade carries the difference it adds), and its fee ``ceil(feeRate x
cost)`` likewise, on both legs, in the quote currency. A resting buy holds ``ceil(amount x limit) +
ceil(feeRate x that)`` of cash, which its fills can never exceed; what is left is released when it ends.
A resting sell holds its quantity. Holdings are valued at ``floor(quantity x mark)``.

**Circuit breakers** (per account, in quote money, None = off):

- ``dailyLossLimit``: the day's loss is the account's value at 00:00 UTC of the simulation clock (taken
  at the last prices before the day's first event) minus its value now: realized + unrealized P/L since
  then, fees included. A loss equal to the limit is allowed; a loss past it is a breach. When a tick or
  a fill takes the loss past the limit, the account is halted until the next 00:00 UTC and a
  :class:`BreakerEvent` is emitted. A halted account's new orders, buys and sells alike, are rejected
  with ``DAILY_LOSS_LIMIT`` for the rest of the simulated day (an account found past its limit when it
  places an order is halted then); open orders are left as they are. While not halted, a buy whose own
  immediate cost (fee, plus for a taker the slippage and impact against the mark) would take the loss
  past the limit is rejected too; a sell is not (it only reduces a position: there is no shorting).
- ``maxPositionSize``: a cap on one symbol's position **in quote value**: a buy is rejected with
  ``MAX_POSITION_SIZE`` when (quantity held + open buy orders' remaining + this order's amount) x the
  last price (the limit price when no price is known yet) would pass the cap; equal to it is allowed.

Rejection codes are checked in the order of :class:`.errors.Reject`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from agents_examples.trading.exchange.engine.accounts import Account, Position
from agents_examples.trading.exchange.engine.config import (
    DEFAULT_STARTING_CASH,
    MONEY_SCALE,
    QTY_SCALE,
    FillConfig,
    canonical,
    exact_units,
    units_decimal,
)
from agents_examples.trading.exchange.engine.errors import (
    AccountExists,
    AccountNotFound,
    CancelReason,
    ClientOrderIdConflict,
    OrderNotFound,
    OrderNotOpen,
    Reject,
    UnknownSymbol,
)
from agents_examples.trading.exchange.engine.events import (
    BreakerEvent,
    Event,
    Fill,
    Listener,
    OrderUpdate,
)
from agents_examples.trading.exchange.engine.orders import (
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Trade,
)
from agents_examples.trading.exchange.market.bars import Bar

SNAPSHOT_VERSION: Final = 1
DAY_MS: Final = 86_400_000  # the trading day: 00:00 to 00:00 UTC of the simulation clock
_OPEN: Final = OrderStatus.OPEN
_BUY: Final = Side.BUY
_QUANTUM: Final = Decimal("1e-8")
_COMPACT_AT: Final = 64  # canceled entries a book tolerates before it is rebuilt without them

__all__ = ["Exchange"]


class _Market:
    """One symbol's state: last price, current bar, the bar's remaining volume share per side, and the
    book (heaps of ``(-limit, seq, order)`` for buys and ``(limit, seq, order)`` for sells; canceled
    orders are dropped lazily when they reach the top, or all at once when there are many)."""

    __slots__ = ("asks", "bar", "bids", "budget_buy", "budget_sell", "dead", "prev", "price", "symbol", "ts")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.price: int | None = None
        self.ts: int | None = None
        self.prev: int | None = None  # the previous tick's price in the current bar (None at its open)
        self.bar: Bar | None = None
        self.budget_buy = 0
        self.budget_sell = 0
        self.bids: list[tuple[int, int, Order]] = []
        self.asks: list[tuple[int, int, Order]] = []
        self.dead = 0


@dataclass(frozen=True, slots=True)
class _Checked:
    """A new order that passed its checks: how it executes."""

    taker_price: int | None  # fill it all at once at this price, or rest it (None)
    reserve: int  # cash a resting buy holds


class Exchange:
    """The engine's facade. See the module docstring for the fill model, rounding and breakers."""

    def __init__(self, config: FillConfig | None = None, symbols: Iterable[str] = ()) -> None:
        self.config = config or FillConfig()
        cfg = self.config
        self._fee_n, self._fee_d = cfg.fee_ratio
        slip_n, slip_d = cfg.slippage_bps.as_integer_ratio()
        self._slip_n, self._slip_d = slip_n, slip_d * 10_000
        self._k_n, self._k_d = cfg.impact_coefficient.as_integer_ratio()
        self._part_n, self._part_d = cfg.participation_rate.as_integer_ratio()
        self._max_impact = None if cfg.max_price_impact is None else cfg.max_price_impact.as_integer_ratio()
        self._timeout_ms = cfg.timeout_ms
        self._fee_rate = cfg.fee_rate
        self._currency = cfg.quote_currency
        self._markets: dict[str, _Market] = {}
        self._accounts: dict[str, Account] = {}
        self._guarded: dict[str, Account] = {}  # accounts with a daily loss limit, not halted
        self._expiries: list[tuple[int, int, Order]] = []
        self._listeners: list[Listener] = []
        self._pending: list[Event] = []
        self._flushing = False
        self._defer = False  # replay_bar holds events until its bar is done
        self._now = 0
        self._day_end = 0  # the end of the current simulated day (0: no time seen yet)
        self._order_seq = 0
        self._trade_seq = 0
        self.fees_collected = 0  # money units, every fee charged since the start
        for symbol in symbols:
            self.list_symbol(symbol)

    # ----------------------------------------------------------------- listing, accounts, listeners

    @property
    def now_ms(self) -> int:
        """The engine's simulated time: the latest of market data, ``place`` and ``cancel`` times."""
        return self._now

    @property
    def symbols(self) -> list[str]:
        """The traded symbols, in the order they were listed or first seen in market data."""
        return list(self._markets)

    def list_symbol(self, symbol: str) -> None:
        """Trade ``symbol`` (a no-op if it is already traded); market data lists a symbol by itself."""
        if symbol not in self._markets:
            self._markets[symbol] = _Market(symbol)

    def price(self, symbol: str) -> int | None:
        """The last tick's price of ``symbol`` in price units (None before any)."""
        market = self._markets.get(symbol)
        if market is None:
            raise UnknownSymbol(f"{symbol!r} is not traded here")
        return market.price

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event from now on (see :mod:`.events`)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener`` (no error if it was not subscribed)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def open_account(
        self,
        account_id: str,
        starting_cash: Decimal | int | str = DEFAULT_STARTING_CASH,
        *,
        daily_loss_limit: Decimal | int | str | None = None,
        max_position_size: Decimal | int | str | None = None,
    ) -> None:
        """Open an account with ``starting_cash`` (quote currency, e.g. ``Decimal("100000")``) and
        optional breakers in quote currency. Raises AccountExists, or ValueError for a bad amount."""
        if account_id in self._accounts:
            raise AccountExists(f"account {account_id!r} already exists")
        cash = exact_units(starting_cash, MONEY_SCALE, "starting cash")
        if cash < 0:
            raise ValueError("starting cash must not be negative")
        account = Account(account_id, cash, cash, day_start_equity=cash)
        self._accounts[account_id] = account
        self.set_limits(account_id, daily_loss_limit=daily_loss_limit, max_position_size=max_position_size)

    def set_limits(
        self,
        account_id: str,
        *,
        daily_loss_limit: Decimal | int | str | None = None,
        max_position_size: Decimal | int | str | None = None,
    ) -> None:
        """Set (or, with None, turn off) an account's breakers, in quote currency; positive amounts.

        A halt already in force stays until the day ends."""
        account = self._account(account_id)
        account.daily_loss_limit = _limit(daily_loss_limit, "dailyLossLimit")
        account.max_position_size = _limit(max_position_size, "maxPositionSize")
        self._guarded.pop(account_id, None)
        if account.daily_loss_limit is not None and account.halted_until is None:
            self._guarded[account_id] = account

    def accounts(self) -> list[str]:
        """Every account id, in opening order."""
        return list(self._accounts)

    # ----------------------------------------------------------------------------------- orders

    def place(self, account_id: str, request: OrderRequest, now_ms: int) -> Order:
        """Place an order at simulated time ``now_ms``; returns it (status ``open``, ``closed`` or
        ``rejected`` with ``reason``).

        With a ``client_order_id`` already used by this account: the same terms return that order as it
        is now (nothing new happens); other terms raise ClientOrderIdConflict. Raises AccountNotFound or
        UnknownSymbol (nothing recorded)."""
        account = self._account(account_id)
        market = self._markets.get(request.symbol)
        if market is None:
            raise UnknownSymbol(f"{request.symbol!r} is not traded here")
        now = self._now if now_ms < self._now else now_ms
        self._advance(now)
        cid = request.client_order_id
        if cid is not None:
            existing = account.by_client_id.get(cid)
            if existing is not None:
                self._flush()
                if existing.request != request:
                    raise ClientOrderIdConflict(
                        f"clientOrderId {cid!r} was used for order {existing.id} with other terms"
                    )
                return existing
        self._order_seq += 1
        seq = self._order_seq
        order = Order(f"ord_{seq}", seq, account_id, request, now, last_update_timestamp=now)
        account.orders[order.id] = order
        if cid is not None:
            account.by_client_id[cid] = order
        checked = self._check(account, market, order)
        if checked is not None:
            if checked.taker_price is not None:
                self._fill(account, order, checked.taker_price, request.amount, now, taker=True)
            else:
                self._rest(account, market, order, checked.reserve)
                self._updated(order, now)
        self._flush()
        return order

    def cancel(self, account_id: str, order_id: str, now_ms: int) -> Order:
        """Cancel an open order at ``now_ms``; returns it (``canceled``, its fills kept).

        Raises AccountNotFound, OrderNotFound, or OrderNotOpen (it closed, was canceled or rejected,
        possibly by the market data or its timeout up to ``now_ms``)."""
        account = self._account(account_id)
        order = account.orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"no order {order_id!r}")
        self._advance(self._now if now_ms < self._now else now_ms)
        if order.status is not _OPEN:
            self._flush()
            raise OrderNotOpen(f"order {order_id} is {order.status.value}")
        self._cancel(account, order, self._now, CancelReason.CANCELED)
        self._flush()
        return order

    def order(self, account_id: str, order_id: str) -> Order:
        """One order of the account (raises AccountNotFound, OrderNotFound)."""
        order = self._account(account_id).orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"no order {order_id!r}")
        return order

    def orders(self, account_id: str, status: OrderStatus | str | None = None) -> list[Order]:
        """The account's orders in placement order, optionally only those with ``status``."""
        orders = self._account(account_id).orders.values()
        if status is None:
            return list(orders)
        wanted = OrderStatus(status)
        return [order for order in orders if order.status is wanted]

    def open_order_count(self, account_id: str) -> int:
        """How many of the account's orders are open (resting in the book)."""
        return self._account(account_id).open_orders

    def trades(self, account_id: str) -> list[Trade]:
        """The account's fills, oldest first."""
        return list(self._account(account_id).trades)

    def order_view(self, order: Order) -> dict[str, Any]:
        """An order's JSON view (:meth:`Order.view` with this exchange's fee rate and currency)."""
        return order.view(self._fee_rate, self._currency)

    def trade_view(self, trade: Trade) -> dict[str, Any]:
        """A trade's JSON view."""
        return trade.view(self._fee_rate, self._currency)

    # -------------------------------------------------------------------------------- portfolio

    def portfolio(self, account_id: str) -> dict[str, Any]:
        """The account at the last prices, exact Decimals in the quote currency (quantities in base).

        ``{timestamp, currency, totalValue, cash, positionsValue, realizedPnl, unrealizedPnl, dailyPnl,
        feesPaid, positions: [{symbol, quantity, averageEntryPrice, currentPrice, value, costBasis,
        unrealizedPnl, realizedPnl}], balances: {CUR: {free, used, total}}, limits: {dailyLossLimit,
        maxPositionSize, halted, haltedUntil}}``. ``cash`` includes what open buy orders hold (``used``
        in ``balances``); ``positions`` lists the symbols held, by symbol; ``averageEntryPrice`` leaves
        fees out, ``costBasis`` and the P/L figures count them; ``realizedPnl`` at the top also counts
        positions since closed; ``totalValue - starting cash == realizedPnl + unrealizedPnl``."""
        account = self._account(account_id)
        positions: list[dict[str, Any]] = []
        balances: dict[str, dict[str, Decimal]] = {
            self._currency: _balance(account.cash - account.reserved, account.reserved),
        }
        held_value = unrealized = realized = 0
        for symbol in sorted(account.positions):
            position = account.positions[symbol]
            realized += position.realized
            if not position.quantity:
                continue
            mark = self._mark(position)
            value = position.value(mark)
            held_value += value
            unrealized += value - position.cost_basis
            balances[symbol] = _balance(position.quantity - position.reserved, position.reserved)
            positions.append(
                {
                    "symbol": symbol,
                    "quantity": units_decimal(position.quantity),
                    "averageEntryPrice": _price_ratio(position.entry_notional, position.quantity),
                    "currentPrice": units_decimal(mark),
                    "value": units_decimal(value),
                    "costBasis": units_decimal(position.cost_basis),
                    "unrealizedPnl": units_decimal(value - position.cost_basis),
                    "realizedPnl": units_decimal(position.realized),
                }
            )
        total = account.cash + held_value
        return {
            "timestamp": self._now,
            "currency": self._currency,
            "totalValue": units_decimal(total),
            "cash": units_decimal(account.cash),
            "positionsValue": units_decimal(held_value),
            "realizedPnl": units_decimal(realized),
            "unrealizedPnl": units_decimal(unrealized),
            "dailyPnl": units_decimal(total - account.day_start_equity),
            "feesPaid": units_decimal(account.fees_paid),
            "positions": positions,
            "balances": balances,
            "limits": {
                "dailyLossLimit": _opt_units(account.daily_loss_limit),
                "maxPositionSize": _opt_units(account.max_position_size),
                "halted": account.halted_until is not None,
                "haltedUntil": account.halted_until,
            },
        }

    def equity(self, account_id: str) -> int:
        """The account's value at the last prices, in money units."""
        return self._equity(self._account(account_id))

    # ------------------------------------------------------------------------------ market data

    def on_bar(self, symbol: str, bar: Bar, ts_ms: int | None = None) -> None:
        """A new bar's first tick, its open, at ``ts_ms`` (default ``bar.ts_ms``; the market simulator
        passes the simulated time, its bars keep their historical one): the bar becomes the current one
        (its volume is the impact basis and the volume share), then the open is matched as a tick."""
        market = self._markets.get(symbol)
        if market is None:
            market = self._markets[symbol] = _Market(symbol)
        if ts_ms is None:
            ts = bar.ts_ms
        else:
            ts = ts_ms
            if bar.ts_ms != ts:
                bar = replace(bar, ts_ms=ts)  # kept on the simulated time, as replay_bar's bars are
        self._advance_feed(ts)
        market.bar = bar
        market.budget_buy = market.budget_sell = bar.volume * self._part_n // self._part_d
        market.prev = None
        self._tick(market, bar.open, ts)

    def on_market_tick(self, symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
        """The market simulator's tick listener (``MarketSimulator.add_listener(exchange.on_market_tick)``):
        phase 0 is the bar's open (:meth:`on_bar` at ``ts_ms``), phases 1 to 3 are :meth:`on_tick`."""
        if phase == 0:
            self.on_bar(symbol, bar, ts_ms)
        else:
            self.on_tick(symbol, price, ts_ms)

    def on_tick(self, symbol: str, price: int, ts_ms: int) -> None:
        """A later tick of the current bar (price units, simulated ms): match what it crosses."""
        market = self._markets.get(symbol)
        if market is None:
            market = self._markets[symbol] = _Market(symbol)
        self._advance_feed(ts_ms)
        self._tick(market, price, ts_ms)

    def replay_bar(self, symbol: str, bar: Bar) -> None:
        """A whole bar: its 4 ticks in path order at ``ts_ms + k x span_ms // 4``, with the same fills,
        cancels and halts as :meth:`on_bar` and 3 x :meth:`on_tick`; the bar's events are delivered
        once the whole bar is done (so a listener's reaction lands after the bar, not between ticks).

        Only the ticks that can fill are matched: the open for both sides, then the low for buys and
        the high for sells (a later tick cannot cross an order the extreme did not fill, and the bar's
        volume share is the same); a bar that crosses nothing is taken in one step. A bar with a
        timeout inside it, a day boundary, or an account with a daily loss limit holding (or buying)
        the symbol is run tick by tick."""
        market = self._markets.get(symbol)
        if market is None:
            market = self._markets[symbol] = _Market(symbol)
        ts = bar.ts_ms
        quarter = bar.span_ms // 4
        last = ts + 3 * quarter
        if ts < self._now:
            raise ValueError(f"market data for {symbol} at {ts} is before the engine's time {self._now}")
        expiries = self._expiries
        if (
            last >= self._day_end
            or (expiries and expiries[0][0] <= last)
            or (self._guarded and self._guarded_holders(symbol))
        ):
            self._replay_ticks(symbol, bar, quarter)
            return
        market.bar = bar
        market.budget_buy = market.budget_sell = bar.volume * self._part_n // self._part_d
        bids, asks = market.bids, market.asks
        low, high, open_ = bar.low, bar.high, bar.open
        if (bids and -bids[0][0] >= low) or (asks and asks[0][0] <= high):
            self._now = ts
            market.price = open_
            if bids and -bids[0][0] >= open_:
                self._match(market, bids, open_, None, ts, buy=True)
            if asks and asks[0][0] <= open_:
                self._match(market, asks, open_, None, ts, buy=False)
            if bar.close >= open_:  # O, L, H, C
                if bids and -bids[0][0] >= low:
                    market.price = low
                    self._match(market, bids, low, open_, ts + quarter, buy=True)
                if asks and asks[0][0] <= high:
                    market.price = high
                    self._match(market, asks, high, low, ts + 2 * quarter, buy=False)
            else:  # O, H, L, C
                if asks and asks[0][0] <= high:
                    market.price = high
                    self._match(market, asks, high, open_, ts + quarter, buy=False)
                if bids and -bids[0][0] >= low:
                    market.price = low
                    self._match(market, bids, low, high, ts + 2 * quarter, buy=True)
        market.price = market.prev = bar.close
        market.ts = self._now = last
        if self._pending:
            self._flush()

    def _replay_ticks(self, symbol: str, bar: Bar, quarter: int) -> None:
        ts = bar.ts_ms
        self._defer = True
        try:
            self.on_bar(symbol, bar)
            if bar.close >= bar.open:
                self.on_tick(symbol, bar.low, ts + quarter)
                self.on_tick(symbol, bar.high, ts + 2 * quarter)
            else:
                self.on_tick(symbol, bar.high, ts + quarter)
                self.on_tick(symbol, bar.low, ts + 2 * quarter)
            self.on_tick(symbol, bar.close, ts + 3 * quarter)
        finally:
            self._defer = False
        self._flush()

    def advance(self, now_ms: int) -> None:
        """Let simulated time pass without market data (timeouts and the day boundary); earlier times
        are ignored."""
        if now_ms > self._now:
            self._advance(now_ms)
        self._flush()

    # ------------------------------------------------------------------------ snapshot, restore

    def snapshot(self) -> dict[str, Any]:
        """The whole state, JSON-safe (ints, strings, None, lists, dicts) and canonical: two engines
        given the same inputs have equal snapshots. :meth:`restore` reads it back."""
        markets = []
        for market in self._markets.values():
            bar = market.bar
            markets.append(
                {
                    "symbol": market.symbol,
                    "price": market.price,
                    "ts": market.ts,
                    "prev": market.prev,
                    "bar": None
                    if bar is None
                    else [bar.ts_ms, bar.span_ms, bar.open, bar.high, bar.low, bar.close, bar.volume],
                    "budgetBuy": market.budget_buy,
                    "budgetSell": market.budget_sell,
                }
            )
        accounts = [
            {
                "id": account.id,
                "startingCash": account.starting_cash,
                "cash": account.cash,
                "reserved": account.reserved,
                "feesPaid": account.fees_paid,
                "dailyLossLimit": account.daily_loss_limit,
                "maxPositionSize": account.max_position_size,
                "dayStartEquity": account.day_start_equity,
                "haltedUntil": account.halted_until,
                "positions": [position.to_record() for position in account.positions.values()],
                "orders": [order.to_record() for order in account.orders.values()],
            }
            for account in self._accounts.values()
        ]
        return {
            "version": SNAPSHOT_VERSION,
            "config": self.config.to_json(),
            "now": self._now,
            "dayEnd": self._day_end,
            "orderSeq": self._order_seq,
            "tradeSeq": self._trade_seq,
            "feesCollected": self.fees_collected,
            "markets": markets,
            "accounts": accounts,
        }

    @classmethod
    def restore(cls, snapshot: Mapping[str, Any]) -> Exchange:
        """An engine in the state :meth:`snapshot` saved (without listeners)."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot version {snapshot.get('version')!r}")
        exchange = cls(FillConfig.from_json(snapshot["config"]))
        exchange._now = snapshot["now"]
        exchange._day_end = snapshot["dayEnd"]
        exchange._order_seq = snapshot["orderSeq"]
        exchange._trade_seq = snapshot["tradeSeq"]
        exchange.fees_collected = snapshot["feesCollected"]
        for doc in snapshot["markets"]:
            market = exchange._markets[doc["symbol"]] = _Market(doc["symbol"])
            market.price, market.ts, market.prev = doc["price"], doc["ts"], doc["prev"]
            market.bar = None if doc["bar"] is None else Bar(*doc["bar"])
            market.budget_buy, market.budget_sell = doc["budgetBuy"], doc["budgetSell"]
        resting: list[Order] = []
        for doc in snapshot["accounts"]:
            account = Account(
                doc["id"],
                doc["startingCash"],
                doc["cash"],
                doc["dailyLossLimit"],
                doc["maxPositionSize"],
                doc["dayStartEquity"],
                doc["haltedUntil"],
                doc["reserved"],
                doc["feesPaid"],
            )
            for record in doc["positions"]:
                position = Position.from_record(record)
                account.positions[position.symbol] = position
            trades: list[Trade] = []
            for record in doc["orders"]:
                order = Order.from_record(record)
                account.orders[order.id] = order
                if order.request.client_order_id is not None:
                    account.by_client_id[order.request.client_order_id] = order
                trades.extend(order.trades)
                if order.status is _OPEN:
                    resting.append(order)
                    account.open_orders += 1
            trades.sort(key=lambda trade: trade.seq)
            account.trades = trades
            exchange._accounts[account.id] = account
            if account.daily_loss_limit is not None and account.halted_until is None:
                exchange._guarded[account.id] = account
        resting.sort(key=lambda order: order.seq)
        for order in resting:
            exchange._book_add(exchange._markets[order.symbol], order)
            if order.expires_at is not None:
                heapq.heappush(exchange._expiries, (order.expires_at, order.seq, order))
        return exchange

    # ================================================================================= internals

    def _account(self, account_id: str) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise AccountNotFound(f"no account {account_id!r}")
        return account

    def _mark(self, position: Position) -> int:
        market = self._markets.get(position.symbol)
        if market is not None and market.price is not None:
            return market.price
        return position.entry_notional // position.quantity

    def _equity(self, account: Account) -> int:
        total = account.cash
        for position in account.positions.values():
            if position.quantity:
                total += position.quantity * self._mark(position) // QTY_SCALE
        return total

    def _guarded_holders(self, symbol: str) -> bool:
        """Whether an account with a daily loss limit holds ``symbol`` or has buy orders open in it."""
        for account in self._guarded.values():
            position = account.positions.get(symbol)
            if position is not None and (position.quantity or position.pending_buy):
                return True
        return False

    # -------------------------------------------------------------------------------- time

    def _advance_feed(self, ts: int) -> None:
        if ts < self._now:
            raise ValueError(f"market data at {ts} is before the engine's time {self._now}")
        self._advance(ts)

    def _advance(self, now: int) -> None:
        """Move to ``now``: timeouts up to it, in time order, and the day boundary when passed."""
        if now >= self._day_end:
            self._expire(self._day_end - 1)
            self._new_day(now)
        self._expire(now)
        self._now = now

    def _expire(self, until: int) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= until:
            at, _, order = heapq.heappop(expiries)
            if order.status is _OPEN:
                self._now = max(self._now, at)
                self._cancel(self._accounts[order.account_id], order, at, CancelReason.UNFILLED_TIMEOUT)

    def _new_day(self, now: int) -> None:
        start = now - now % DAY_MS
        self._day_end = start + DAY_MS
        for account in self._accounts.values():
            account.day_start_equity = self._equity(account)
            if account.halted_until is not None and account.halted_until <= now:
                account.halted_until = None
                if account.daily_loss_limit is not None:
                    self._guarded[account.id] = account
                    if self._listeners:
                        self._pending.append(
                            BreakerEvent(
                                account.id,
                                start,
                                "lifted",
                                units_decimal(account.daily_loss_limit),
                                Decimal(0),
                                None,
                            )
                        )

    # ------------------------------------------------------------------------------ matching

    def _tick(self, market: _Market, price: int, ts: int) -> None:
        prev = market.prev
        market.price = price
        market.ts = ts
        bids = market.bids
        if bids and -bids[0][0] >= price:
            self._match(market, bids, price, prev, ts, buy=True)
        asks = market.asks
        if asks and asks[0][0] <= price:
            self._match(market, asks, price, prev, ts, buy=False)
        market.prev = price
        if self._guarded:
            self._check_losses(market.symbol, ts)
        if self._pending:
            self._flush()

    def _match(
        self,
        market: _Market,
        book: list[tuple[int, int, Order]],
        price: int,
        prev: int | None,
        ts: int,
        *,
        buy: bool,
    ) -> None:
        accounts = self._accounts
        while book:
            key, _, order = book[0]
            if order.status is not _OPEN:
                heapq.heappop(book)
                market.dead -= 1
                continue
            limit = -key if buy else key
            if (limit < price) if buy else (limit > price):
                return
            budget = market.budget_buy if buy else market.budget_sell
            if budget <= 0:
                return
            quantity = min(order.request.amount - order.filled, budget)
            # Through the limit since the bar's previous tick: at the limit; else at the (better) tick.
            through = prev is not None and ((prev > limit) if buy else (prev < limit))
            fill_price = limit if through else price
            if buy:
                market.budget_buy = budget - quantity
            else:
                market.budget_sell = budget - quantity
            self._fill(accounts[order.account_id], order, fill_price, quantity, ts, taker=False)
            if order.status is _OPEN:
                return  # the bar's share is used up
            heapq.heappop(book)

    # --------------------------------------------------------------------------- new orders

    def _check(self, account: Account, market: _Market, order: Order) -> _Checked | None:
        """Decide how a new order executes, or reject it (returns None after rejecting)."""
        request = order.request
        ref = market.price
        taker_price: int | None = None
        if request.type is OrderType.MARKET:
            if ref is None:
                self._reject(order, Reject.NO_PRICE, f"no price yet for {request.symbol}")
                return None
            quoted = self._taker_price(market, request.side, request.amount)
            if isinstance(quoted, Reject):
                self._reject(order, quoted, _reject_message(quoted, request.symbol))
                return None
            taker_price = quoted
        else:
            limit = request.price
            assert limit is not None
            if ref is not None and ((ref <= limit) if request.side is _BUY else (ref >= limit)):
                quoted = self._taker_price(market, request.side, request.amount)
                if not isinstance(quoted, Reject) and (
                    (quoted <= limit) if request.side is _BUY else (quoted >= limit)
                ):
                    taker_price = quoted
        if account.daily_loss_limit is not None and self._halted(account, order):
            return None
        if request.side is _BUY:
            return self._check_buy(account, market, order, taker_price)
        position = account.positions.get(request.symbol)
        free = 0 if position is None else position.quantity - position.reserved
        if request.amount > free:
            self._reject(
                order,
                Reject.INSUFFICIENT_BALANCE,
                f"selling {units_decimal(request.amount)} {request.symbol} needs that much free; "
                f"{units_decimal(free)} is",
            )
            return None
        return _Checked(taker_price, 0)

    def _check_buy(
        self, account: Account, market: _Market, order: Order, taker_price: int | None
    ) -> _Checked | None:
        request = order.request
        price = taker_price if taker_price is not None else request.price
        assert price is not None
        cost = -(-request.amount * price // QTY_SCALE)
        fee = -(-cost * self._fee_n // self._fee_d)
        ref = market.price
        limit = account.daily_loss_limit
        if limit is not None:
            loss = account.day_start_equity - self._equity(account)
            own = (
                fee if taker_price is None or ref is None else cost + fee - request.amount * ref // QTY_SCALE
            )
            if loss + own > limit:
                self._reject(
                    order,
                    Reject.DAILY_LOSS_LIMIT,
                    f"the day's loss would be {units_decimal(loss + own)}, past the limit "
                    f"{units_decimal(limit)}",
                )
                return None
        cap = account.max_position_size
        if cap is not None:
            position = account.positions.get(request.symbol)
            held = 0 if position is None else position.quantity + position.pending_buy
            mark = ref if ref is not None else request.price
            assert mark is not None
            if (held + request.amount) * mark > cap * QTY_SCALE:
                self._reject(
                    order,
                    Reject.MAX_POSITION_SIZE,
                    f"the {request.symbol} position would be worth "
                    f"{units_decimal((held + request.amount) * mark // QTY_SCALE)}, past the cap "
                    f"{units_decimal(cap)}",
                )
                return None
        if cost + fee > account.free_cash:
            self._reject(
                order,
                Reject.INSUFFICIENT_BALANCE,
                f"the order needs {units_decimal(cost + fee)} {self._currency} (fee included); "
                f"{units_decimal(account.free_cash)} is free",
            )
            return None
        return _Checked(taker_price, 0 if taker_price is not None else cost + fee)

    def _halted(self, account: Account, order: Order) -> bool:
        """Reject ``order`` (either side) when the account is halted for the day, or is past its daily
        loss limit now (which halts it); False when it may trade."""
        if account.halted_until is not None:
            self._reject(
                order,
                Reject.DAILY_LOSS_LIMIT,
                f"trading is halted until {account.halted_until} (the daily loss limit was passed)",
            )
            return True
        limit = account.daily_loss_limit
        assert limit is not None
        loss = account.day_start_equity - self._equity(account)
        if loss > limit:
            self._halt(account, loss, self._now)
            self._reject(order, Reject.DAILY_LOSS_LIMIT, "the daily loss limit is passed")
            return True
        return False

    def _taker_price(self, market: _Market, side: Side, amount: int) -> int | Reject:
        bar = market.bar
        ref = market.price
        if bar is None or bar.volume <= 0 or ref is None:
            return Reject.NO_LIQUIDITY
        volume = bar.volume
        k_n, k_d = self._k_n, self._k_d
        if self._max_impact is not None:
            m_n, m_d = self._max_impact
            if k_n * amount * m_d >= m_n * k_d * volume:
                return Reject.PRICE_IMPACT_TOO_HIGH
        # factor = 1 ± (slip_n / slip_d + k_n x amount / (k_d x volume)) = (den ± excess) / den
        den = self._slip_d * k_d * volume
        excess = self._slip_n * k_d * volume + k_n * self._slip_d * amount
        if side is _BUY:
            return -(-ref * (den + excess) // den)
        price = ref * (den - excess) // den
        return price if price > 0 else Reject.PRICE_IMPACT_TOO_HIGH

    def _rest(self, account: Account, market: _Market, order: Order, reserve: int) -> None:
        request = order.request
        position = account.position(request.symbol)
        account.open_orders += 1
        if request.side is _BUY:
            order.reserved = reserve
            account.reserved += reserve
            position.pending_buy += request.amount
        else:
            order.reserved = request.amount
            position.reserved += request.amount
        if self._timeout_ms is not None:
            order.expires_at = order.timestamp + self._timeout_ms
            heapq.heappush(self._expiries, (order.expires_at, order.seq, order))
        self._book_add(market, order)

    def _book_add(self, market: _Market, order: Order) -> None:
        price = order.request.price
        assert price is not None
        if order.request.side is _BUY:
            heapq.heappush(market.bids, (-price, order.seq, order))
        else:
            heapq.heappush(market.asks, (price, order.seq, order))

    def _reject(self, order: Order, code: Reject, message: str) -> None:
        order.status = OrderStatus.REJECTED
        order.reason = code.value
        order.message = message
        self._updated(order, order.timestamp)

    # ------------------------------------------------------------------------- fills, cancels

    def _fill(
        self, account: Account, order: Order, price: int, quantity: int, ts: int, *, taker: bool
    ) -> None:
        request = order.request
        order.notional += quantity * price
        order.filled += quantity
        position = account.positions.get(request.symbol)
        if position is None:
            position = account.positions[request.symbol] = Position(request.symbol)
        if request.side is _BUY:
            d_cost, d_fee = self._settle_buy(account, position, order, price, quantity, taker=taker)
        else:
            d_cost, d_fee = self._settle_sell(account, position, order, quantity, taker=taker)
        account.fees_paid += d_fee
        self.fees_collected += d_fee
        self._trade_seq += 1
        trade = Trade(
            f"trd_{self._trade_seq}",
            self._trade_seq,
            order.id,
            account.id,
            ts,
            request.symbol,
            request.type,
            request.side,
            taker,
            price,
            quantity,
            d_cost,
            d_fee,
        )
        order.trades.append(trade)
        account.trades.append(trade)
        order.last_trade_timestamp = ts
        if order.filled == request.amount:
            order.status = OrderStatus.CLOSED
            if not taker:
                account.open_orders -= 1
            if request.side is _BUY and order.reserved:
                account.reserved -= order.reserved
                order.reserved = 0
        if self._listeners:
            self._pending.append(Fill(account.id, ts, self.trade_view(trade)))
        self._updated(order, ts)
        if account.daily_loss_limit is not None and account.halted_until is None:
            loss = account.day_start_equity - self._equity(account)
            if loss > account.daily_loss_limit:
                self._halt(account, loss, ts)

    def _settle_buy(
        self, account: Account, position: Position, order: Order, price: int, quantity: int, *, taker: bool
    ) -> tuple[int, int]:
        """Charge a buy fill: the order's cumulative cost and fee rounded up; returns what this fill adds."""
        cost = -(-order.notional // QTY_SCALE)
        fee = -(-cost * self._fee_n // self._fee_d)
        d_cost, d_fee = cost - order.cost, fee - order.fee
        order.cost, order.fee = cost, fee
        spend = d_cost + d_fee
        account.cash -= spend
        if not taker:
            order.reserved -= spend
            account.reserved -= spend
            position.pending_buy -= quantity
        position.quantity += quantity
        position.cost_basis += spend
        position.entry_notional += quantity * price
        return d_cost, d_fee

    def _settle_sell(
        self, account: Account, position: Position, order: Order, quantity: int, *, taker: bool
    ) -> tuple[int, int]:
        """Pay a sell fill: cumulative proceeds rounded down, fee up; the sold share of the basis goes."""
        cost = order.notional // QTY_SCALE
        fee = -(-cost * self._fee_n // self._fee_d)
        d_cost, d_fee = cost - order.cost, fee - order.fee
        order.cost, order.fee = cost, fee
        account.cash += d_cost - d_fee
        held = position.quantity
        if quantity == held:
            basis, entry = position.cost_basis, position.entry_notional
        else:
            basis = position.cost_basis * quantity // held
            entry = position.entry_notional * quantity // held
        position.cost_basis -= basis
        position.entry_notional -= entry
        position.quantity = held - quantity
        position.realized += d_cost - d_fee - basis
        if not taker:
            order.reserved -= quantity
            position.reserved -= quantity
        return d_cost, d_fee

    def _cancel(self, account: Account, order: Order, ts: int, reason: CancelReason) -> None:
        request = order.request
        position = account.position(request.symbol)
        if request.side is _BUY:
            account.reserved -= order.reserved
            position.pending_buy -= request.amount - order.filled
        else:
            position.reserved -= order.reserved
        order.reserved = 0
        order.status = OrderStatus.CANCELED
        account.open_orders -= 1
        order.reason = reason.value
        order.message = (
            "canceled by its owner"
            if reason is CancelReason.CANCELED
            else f"unfilled {self.config.unfilled_timeout_seconds} s after placement"
        )
        market = self._markets[request.symbol]
        market.dead += 1
        if market.dead > _COMPACT_AT and 2 * market.dead > len(market.bids) + len(market.asks):
            market.bids = [entry for entry in market.bids if entry[2].status is _OPEN]
            market.asks = [entry for entry in market.asks if entry[2].status is _OPEN]
            heapq.heapify(market.bids)
            heapq.heapify(market.asks)
            market.dead = 0
        self._updated(order, ts)

    def _updated(self, order: Order, ts: int) -> None:
        order.last_update_timestamp = ts
        if self._listeners:
            self._pending.append(OrderUpdate(order.account_id, ts, self.order_view(order)))

    # -------------------------------------------------------------------------------- breakers

    def _check_losses(self, symbol: str, ts: int) -> None:
        for account in list(self._guarded.values()):
            position = account.positions.get(symbol)
            if position is None or not position.quantity:
                continue
            limit = account.daily_loss_limit
            assert limit is not None
            loss = account.day_start_equity - self._equity(account)
            if loss > limit:
                self._halt(account, loss, ts)

    def _halt(self, account: Account, loss: int, ts: int) -> None:
        limit = account.daily_loss_limit
        assert limit is not None
        account.halted_until = self._day_end
        self._guarded.pop(account.id, None)
        if self._listeners:
            self._pending.append(
                BreakerEvent(
                    account.id, ts, "halted", units_decimal(limit), units_decimal(loss), self._day_end
                )
            )

    # -------------------------------------------------------------------------------- events

    def _flush(self) -> None:
        if self._flushing or self._defer or not self._pending:
            return
        self._flushing = True
        try:
            pending = self._pending
            index = 0
            while index < len(pending):
                event = pending[index]
                index += 1
                for listener in tuple(self._listeners):
                    listener(event)
            pending.clear()
        finally:
            self._flushing = False
            self._pending.clear()


def _limit(value: Decimal | int | str | None, what: str) -> int | None:
    if value is None:
        return None
    units = exact_units(value, MONEY_SCALE, what)
    if units <= 0:
        raise ValueError(f"{what} must be positive")
    return units


def _balance(free: int, used: int) -> dict[str, Decimal]:
    return {"free": units_decimal(free), "used": units_decimal(used), "total": units_decimal(free + used)}


def _opt_units(units: int | None) -> Decimal | None:
    return None if units is None else units_decimal(units)


def _price_ratio(notional: int, quantity: int) -> Decimal:
    return canonical(
        (Decimal(notional) / Decimal(quantity) / QTY_SCALE).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    )


def _reject_message(code: Reject, symbol: str) -> str:
    if code is Reject.NO_LIQUIDITY:
        return f"the current {symbol} bar has no volume to price a market order against"
    return f"the order's price impact on {symbol} is too high for the current bar's volume"
