"""The exchange process's state: market data, the simulator on the simulation clock, the engine, the
accounts store, the sentiment windows and the social feed, and their life cycle.

Everything runs on the event loop's one thread: the paced replay (:meth:`MarketSimulator.run`) steps the
simulator, whose tick listener is :meth:`Exchange.on_market_tick`, between requests; a request's engine
calls are synchronous, so a request sees the engine between two simulator steps, never in the middle
of one. Orders are placed at the simulation clock's time.

**Persistence.** Accounts are written when they register. The engine's snapshot (orders, trades,
balances, breakers) and the simulator's position (its epoch and simulated time) are saved every
``persist_interval_s`` seconds of wall time when something changed (an order placed or canceled, or
the replay moved), and when the process stops. So a crash (SIGKILL) loses at most the last interval;
a clean stop loses nothing. Webhooks (:mod:`.webhooks`) are stored as they are registered; their
delivery workers start and stop with the service. On start the engine is restored and the simulator,
built on the same market data with the saved epoch, replays up to the saved time without the engine
listening (it already holds that state), then carries on. Replaying the same data therefore needs the
same seed for the synthetic series. The social feed and the sentiment windows are in memory only and refill as
the replay runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from agents_examples.trading.exchange.api import sentiment
from agents_examples.trading.exchange.engine import (
    DEFAULT_STARTING_CASH,
    Event,
    Exchange,
    Fill,
    FillConfig,
)
from agents_examples.trading.exchange.market.bars import Bar
from agents_examples.trading.exchange.market.instruments import DEFAULT_INSTRUMENTS, InstrumentSet
from agents_examples.trading.exchange.market.simulator import CLOSE, MarketSimulator
from agents_examples.trading.exchange.market.sources import MarketData
from agents_examples.trading.exchange.store import AccountRecord, AccountStore, key_hash
from agents_examples.trading.exchange.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)

PERMISSIONS: Final = (
    "read:market",
    "read:portfolio",
    "write:orders",
    "read:sentiment",
    "read:social",
    "write:webhook",
)
MODES: Final = ("sandbox", "live")
KEY_PREFIX: Final = {"sandbox": "nx_test_", "live": "nx_live_"}
SOCIAL_FEED_SIZE: Final = 200


@dataclass(frozen=True, slots=True)
class Registered:
    """A new account and its key, which is shown once and not kept."""

    account: AccountRecord
    api_key: str


class ExchangeService:
    """One exchange: see the module doc. ``start``/``stop`` (or ``running``) run the paced replay."""

    def __init__(
        self,
        store: AccountStore,
        market: MarketData,
        *,
        instruments: InstrumentSet = DEFAULT_INSTRUMENTS,
        bars_per_second: float = 1.0,
        epoch_ms: int | None = None,
        fill_config: FillConfig | None = None,
        starting_cash: Decimal = DEFAULT_STARTING_CASH,
        registration_token: str | None = None,
        persist_interval_s: float = 1.0,
        webhooks: WebhookDispatcher | None = None,
    ) -> None:
        self.store = store
        self.market = market
        self.instruments = InstrumentSet(i for i in instruments if i.symbol in market.series)
        self.starting_cash = starting_cash
        self.registration_token = registration_token
        self.persist_interval_s = persist_interval_s
        saved_engine = store.load_state("engine")
        saved_sim = store.load_state("simulator")
        if saved_sim is not None:
            epoch_ms = saved_sim["epochMs"]
        series = [market.series[i.symbol] for i in self.instruments]
        self.simulator = MarketSimulator(series, epoch_ms=epoch_ms, bars_per_second=bars_per_second)
        if saved_engine is not None and saved_sim is not None:
            self.engine = Exchange.restore(saved_engine)
            self.simulator.advance_to(saved_sim["nowMs"])
        else:
            self.engine = Exchange(fill_config, symbols=self.instruments.symbols)
        self._closes: dict[str, deque[int]] = {
            s: deque(maxlen=sentiment.WINDOW) for s in self.instruments.symbols
        }
        self.social: deque[dict[str, Any]] = deque(maxlen=SOCIAL_FEED_SIZE)
        self.simulator.add_listener(self.engine.on_market_tick)
        self.simulator.add_listener(self._on_tick)
        self.engine.subscribe(self._on_event)
        self.webhooks = webhooks or WebhookDispatcher(store)
        self.engine.subscribe(self.webhooks.on_event)
        self._by_hash: dict[str, AccountRecord] = {}
        self._by_id: dict[str, AccountRecord] = {}
        for record in store.all():
            self._remember(record)
            if record.id not in self.engine.accounts():  # registered after the last snapshot
                self._open(record)
        if saved_engine is None:
            self.simulator.advance_to(self.simulator.epoch_ms)  # every instrument's first tick: a price
        self._dirty = True
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------------------ accounts

    def _remember(self, record: AccountRecord) -> None:
        self._by_hash[record.key_hash] = record
        self._by_id[record.id] = record

    def _open(self, record: AccountRecord) -> None:
        self.engine.open_account(
            record.id,
            self.starting_cash,
            daily_loss_limit=record.daily_loss_limit,
            max_position_size=record.max_position_size,
        )

    def register(
        self,
        name: str,
        permissions: Iterable[str],
        mode: str,
        *,
        daily_loss_limit: str | None = None,
        max_position_size: str | None = None,
        social: bool = False,
    ) -> Registered:
        """Open an account with a fresh key and secret (validated by the caller; limits are decimal
        strings, checked by the engine, which raises ValueError)."""
        api_key = KEY_PREFIX[mode] + secrets.token_urlsafe(32)
        record = AccountRecord(
            id="agent_" + secrets.token_hex(12),
            name=name,
            permissions=tuple(permissions),
            mode=mode,
            key_hash=key_hash(api_key),
            key_prefix=api_key[:12],
            secret=secrets.token_urlsafe(32),
            daily_loss_limit=daily_loss_limit,
            max_position_size=max_position_size,
            social=social,
            created_ms=time.time_ns() // 1_000_000,
        )
        self._open(record)  # first: it validates the limits
        self.store.add(record)
        self._remember(record)
        self._dirty = True
        log.info("registered %s account %s (%s)", mode, record.id, record.key_prefix)
        return Registered(record, api_key)

    def by_key(self, api_key: str) -> AccountRecord | None:
        """The account of an API key, looked up by the key's hash (the key itself is never compared)."""
        return self._by_hash.get(key_hash(api_key))

    def account(self, account_id: str) -> AccountRecord | None:
        """An account by id."""
        return self._by_id.get(account_id)

    # ------------------------------------------------------------------------------ market

    @property
    def now_ms(self) -> int:
        """The simulation clock's time: what orders are placed at."""
        return self.simulator.clock.now_ms()

    def closes(self, symbol: str) -> list[int]:
        """The last bars' closes of ``symbol`` (oldest first), for the sentiment score."""
        return list(self._closes[symbol])

    def _on_tick(self, symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
        if phase == CLOSE:
            self._closes[symbol].append(price)
            self._dirty = True

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Fill):
            record = self._by_id.get(event.account_id)
            if record is not None and record.social:
                trade = event.trade
                self.social.append(
                    {
                        "agent": record.name,
                        "agentId": record.id,
                        "symbol": trade["symbol"],
                        "side": trade["side"],
                        "type": trade["type"],
                        "price": trade["price"],
                        "amount": trade["amount"],
                        "timestamp": trade["timestamp"],
                    }
                )

    def changed(self) -> None:
        """Something a request did must be saved with the next snapshot."""
        self._dirty = True

    # ------------------------------------------------------------------------------ life cycle

    def persist(self) -> None:
        """Save the engine and the simulator's position now (see the module doc)."""
        self.store.save_state(
            {
                "engine": self.engine.snapshot(),
                "simulator": {"epochMs": self.simulator.epoch_ms, "nowMs": self.now_ms},
            }
        )
        self._dirty = False

    async def _persist_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.persist_interval_s)
            if self._dirty:
                try:
                    self.persist()
                except Exception:
                    log.exception("saving the exchange state failed; retrying at the next interval")

    async def start(self, *, paced: bool = True) -> None:
        """Run the paced replay (unless ``paced`` is False: tests step the simulator themselves) and
        the periodic save in the background."""
        self._stop = stop = asyncio.Event()
        await self.webhooks.start()
        if paced:
            self._tasks.append(asyncio.create_task(self.simulator.run(stop)))
        self._tasks.append(asyncio.create_task(self._persist_loop(stop)))

    async def stop(self) -> None:
        """Stop the background work, save, close the store."""
        if self._stop is not None:
            self._stop.set()
        for task in self._tasks:
            await task
        self._tasks.clear()
        await self.webhooks.stop()
        self.persist()
        self.store.close()

    @contextlib.asynccontextmanager
    async def running(self, *, paced: bool = True) -> AsyncIterator[ExchangeService]:
        """``start`` … ``stop``."""
        await self.start(paced=paced)
        try:
            yield self
        finally:
            await self.stop()
