"""The engine's user-facing operations: trading agents, configs, wallets, signals, and what they show.

Every operation takes the caller's gateway user id and sees only that user's trading agents, wallets
and records: another user's agent is "not found" (404), never "forbidden", so ids cannot be probed.

**Signals.** A posted signal reaches every trading agent that follows its publisher (the config's
``signals.sources``: ``"self"`` for the agent's own user, ``"user:<id>"`` for another publisher). Each
such agent gets one execution record: ``SKIPPED`` with a reason code when a filter, the balance, a
position or a risk limit says no; else ``PENDING`` while its buy goes through the exchange, then
``EXECUTED`` or ``FAILED``. A ``sell`` signal closes the agent's open position in the token instead
(closeReason ``signal``; an extension: Nexgent's signals only ever buy). The same publisher, token,
type and strength within the duplicate window (60 s unless set) is refused as ``SIGNAL_DUPLICATE``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final
from uuid import uuid4

from agents_examples.trading.engine.codec import (
    iso,
    position_view,
    snapshot_from_record,
    trade_from_record,
    trade_view,
)
from agents_examples.trading.engine.domain import exits
from agents_examples.trading.engine.domain.config import ConfigError, TradingConfig, parse_config
from agents_examples.trading.engine.domain.entry import Entry, decide_entry
from agents_examples.trading.engine.domain.models import CloseReason, Position
from agents_examples.trading.engine.domain.performance import Performance, performance, snapshot_points
from agents_examples.trading.engine.domain.signals import (
    DUPLICATE_WINDOW_MS,
    SignalError,
    SignalInput,
    dedupe_key,
)
from agents_examples.trading.engine.errors import EngineError, conflict, invalid, not_found
from agents_examples.trading.engine.events import PositionEvents
from agents_examples.trading.engine.exchange_link import ExchangeRefused, ExchangeUnavailable, WalletKeys
from agents_examples.trading.engine.jsonvalues import plain
from agents_examples.trading.engine.records import (
    Execution,
    ExecutionStatus,
    TradingAgent,
    TradingMode,
    Wallet,
)
from agents_examples.trading.engine.store import EngineStore
from agents_examples.trading.engine.trading import ExchangePort, Trader, now_iso

MAX_AGENTS_PER_USER: Final = 100
MAX_WALLETS_PER_USER: Final = 100
NAME_MIN, NAME_MAX = 3, 50
MANUAL_CLOSE_REASONS: Final = (None, "manual", "stop_loss", "take_profit")  # Nexgent's close route
SANDBOX_PREFIX: Final = "nx_test_"
LIVE_PREFIX: Final = "nx_live_"
AGENT_FIELDS: Final = frozenset(
    {"name", "tradingMode", "isActive", "automatedTradingSimulation", "automatedTradingLive"}
)

SandboxIssuer = Callable[[str], Any]  # async (label) -> WalletKeys: a new sandbox account at the exchange


def publisher_matches(agent: TradingAgent, publisher: str) -> bool:
    """Whether ``agent`` follows signals posted by gateway user ``publisher``."""
    sources = agent.config.signals.sources
    return ("self" in sources and agent.user_id == publisher) or f"user:{publisher}" in sources


class EngineService:
    """Trading agents, wallets and signals of every user, over one :class:`Trader`."""

    def __init__(
        self,
        store: EngineStore,
        exchange: ExchangePort,
        hub: PositionEvents | None = None,
        *,
        wall: Callable[[], float] = time.time,
        sandbox: SandboxIssuer | None = None,
        duplicate_window_ms: int = DUPLICATE_WINDOW_MS,
    ) -> None:
        self.store = store
        self.duplicate_window_ms = duplicate_window_ms
        self.hub = hub or PositionEvents()
        self.trader = Trader(store, exchange, self.hub, wall=wall)
        self.wall = wall
        self.sandbox = sandbox
        self.started = wall()
        self._recent: dict[tuple[str, str, str, int], float] = {}
        self.trader.load()

    @property
    def agents(self) -> dict[str, TradingAgent]:
        return self.trader.agents

    # ------------------------------------------------------------------------------ trading agents

    def agent(self, user: str, agent_id: str) -> TradingAgent:
        """``user``'s trading agent ``agent_id`` (404 for anyone else's)."""
        found = self.trader.agents.get(agent_id)
        if found is None or found.user_id != user:
            raise not_found("Agent", "AGENT_NOT_FOUND")
        return found

    def owner_of(self, agent_id: str) -> str | None:
        """The gateway user owning trading agent ``agent_id``."""
        found = self.trader.agents.get(agent_id)
        return None if found is None else found.user_id

    def list_agents(self, user: str) -> list[TradingAgent]:
        """``user``'s trading agents, oldest first."""
        return [a for a in self.trader.agents.values() if a.user_id == user]

    def create_agent(self, user: str, doc: dict[str, Any]) -> TradingAgent:
        """A new trading agent from ``{name, tradingMode?, …}``."""
        _only(doc, AGENT_FIELDS | {"tradingConfig"})
        if len(self.list_agents(user)) >= MAX_AGENTS_PER_USER:
            raise conflict(f"At most {MAX_AGENTS_PER_USER} agents per user", "TOO_MANY_AGENTS")
        if "name" not in doc:
            raise invalid("name is required", field="name")
        stamp = now_iso(self.wall)
        agent = TradingAgent(
            id=str(uuid4()),
            user_id=user,
            name="",
            trading_mode=TradingMode.SIMULATION,
            created_at=stamp,
            updated_at=stamp,
        )
        self._apply_fields(agent, doc)
        if "tradingConfig" in doc:
            agent.config = _config(doc["tradingConfig"], agent.config)
        with self.store.batch():
            self.trader.save_agent(agent)
        self.trader.agents[agent.id] = agent
        return agent

    def update_agent(self, user: str, agent_id: str, doc: dict[str, Any]) -> TradingAgent:
        """Change an agent's name, mode or automation switches."""
        agent = self.agent(user, agent_id)
        _only(doc, AGENT_FIELDS)
        trial = TradingAgent.from_record(agent.to_record())
        self._apply_fields(trial, doc)
        wallet = self.trader.wallets.get(agent.wallet_address or "")
        if wallet is not None and wallet.wallet_type is not trial.trading_mode:
            raise conflict(
                f"The agent's {wallet.wallet_type.value} wallet cannot trade in "
                f"{trial.trading_mode.value} mode; reset the wallet first",
                "TRADING_MODE_MISMATCH",
            )
        if trial.automated and not agent.automated:
            trial.halted = None  # the owner switched trading back on after a pause
        self._apply_fields(agent, doc)
        agent.halted = trial.halted
        agent.updated_at = now_iso(self.wall)
        with self.store.batch():
            self.trader.save_agent(agent)
        return agent

    def _apply_fields(self, agent: TradingAgent, doc: dict[str, Any]) -> None:
        if "name" in doc:
            name = doc["name"]
            if not isinstance(name, str) or not NAME_MIN <= len(name.strip()) <= NAME_MAX:
                raise invalid(f"name must be a string of {NAME_MIN} to {NAME_MAX} characters", field="name")
            agent.name = name.strip()
        if "tradingMode" in doc:
            try:
                agent.trading_mode = TradingMode(doc["tradingMode"])
            except (ValueError, TypeError):
                raise invalid("tradingMode must be 'simulation' or 'live'", field="tradingMode") from None
        for field, attr in (
            ("automatedTradingSimulation", "automated_simulation"),
            ("automatedTradingLive", "automated_live"),
        ):
            if field in doc:
                if not isinstance(doc[field], bool):
                    raise invalid(f"{field} must be true or false", field=field)
                setattr(agent, attr, doc[field])
        if "isActive" in doc:
            if not isinstance(doc["isActive"], bool):
                raise invalid("isActive must be true or false", field="isActive")
            if agent.trading_mode is TradingMode.LIVE:
                agent.automated_live = doc["isActive"]
            else:
                agent.automated_simulation = doc["isActive"]

    def delete_agent(self, user: str, agent_id: str) -> None:
        """Delete an agent and its records; its wallet is unassigned (the exchange account stays)."""
        agent = self.agent(user, agent_id)
        self._refuse_while_trading(agent)
        with self.store.batch():
            self._clear(agent)
            self.store.delete("trading_agents", id=agent.id)
            self.store.delete("executions", agent_id=agent.id)
        del self.trader.agents[agent.id]

    def _refuse_while_trading(self, agent: TradingAgent) -> None:
        busy = self.trader.pending.get(agent.id) or any(
            p.id in self.trader.selling for p in self.trader.open_positions(agent.id)
        )
        if busy:
            raise conflict("A trade of this agent is in progress; try again in a moment", "TRADE_IN_PROGRESS")

    def config(self, user: str, agent_id: str) -> TradingConfig:
        """An agent's trading config."""
        return self.agent(user, agent_id).config

    def put_config(self, user: str, agent_id: str, doc: object) -> TradingConfig:
        """Merge ``doc`` over the agent's config; every field validated (400 with the first error)."""
        agent = self.agent(user, agent_id)
        agent.config = _config(doc, agent.config)
        agent.updated_at = now_iso(self.wall)
        with self.store.batch():
            self.trader.save_agent(agent)
        return agent.config

    # ------------------------------------------------------------------------------ wallets

    def list_wallets(self, user: str) -> list[Wallet]:
        """``user``'s wallets."""
        return [w for w in self.trader.wallets.values() if w.user_id == user]

    def wallet(self, user: str, address: str) -> Wallet:
        """``user``'s wallet ``address`` (404 otherwise)."""
        found = self.trader.wallets.get(address)
        if found is None or found.user_id != user:
            raise not_found("Wallet", "WALLET_NOT_FOUND")
        return found

    async def add_wallet(self, user: str, doc: dict[str, Any]) -> Wallet:
        """A wallet from an exchange account's ``{apiKey, apiSecret, label?}``, or a new sandbox account
        (no keys given) when the engine knows the exchange's registration route."""
        _only(doc, {"apiKey", "apiSecret", "label"})
        if len(self.list_wallets(user)) >= MAX_WALLETS_PER_USER:
            raise conflict(f"At most {MAX_WALLETS_PER_USER} wallets per user", "TOO_MANY_WALLETS")
        label = doc.get("label", "")
        if not isinstance(label, str) or len(label) > 100:
            raise invalid("label must be a string of at most 100 characters", field="label")
        api_key, secret = doc.get("apiKey"), doc.get("apiSecret")
        if api_key is None and secret is None:
            if self.sandbox is None:
                raise invalid("apiKey and apiSecret are required (this engine cannot open sandbox accounts)")
            try:
                keys: WalletKeys = await self.sandbox(label or "trading engine")
            except ExchangeUnavailable as exc:
                raise EngineError(502, "EXCHANGE_UNAVAILABLE", str(exc)[:300]) from None
        else:
            if not (isinstance(api_key, str) and 8 < len(api_key) <= 200):
                raise invalid("apiKey must be an Agent Connect key (nx_test_… or nx_live_…)", field="apiKey")
            if not (isinstance(secret, str) and 8 < len(secret) <= 200):
                raise invalid("apiSecret must be the account's secret", field="apiSecret")
            keys = WalletKeys(api_key, secret)
        if keys.api_key.startswith(LIVE_PREFIX):
            kind = TradingMode.LIVE
        elif keys.api_key.startswith(SANDBOX_PREFIX):
            kind = TradingMode.SIMULATION
        else:
            raise invalid("apiKey must start with nx_test_ (simulation) or nx_live_ (live)", field="apiKey")
        address = f"{'sim' if kind is TradingMode.SIMULATION else 'live'}_{_digest(keys.api_key)}"
        if address in self.trader.wallets:
            raise conflict("This exchange account is already a wallet here", "WALLET_EXISTS")
        try:
            await self.trader.exchange.portfolio(keys)  # the keys work: the exchange names the account
        except ExchangeRefused as refused:
            raise invalid(
                f"The exchange refused these keys ({refused.code}: {refused.message})"[:300],
                "WALLET_KEYS_REFUSED",
                field="apiKey",
            ) from None
        except ExchangeUnavailable as exc:
            raise EngineError(502, "EXCHANGE_UNAVAILABLE", str(exc)[:300]) from None
        wallet = Wallet(address, user, kind, keys.api_key, keys.api_secret, label, now_iso(self.wall))
        with self.store.batch():
            self.trader.save_wallet(wallet)
        self.trader.wallets[address] = wallet
        return wallet

    async def assign_wallet(self, user: str, doc: dict[str, Any]) -> TradingAgent:
        """``{agentId, walletAddress, walletType?, startingBalance?}``: give the agent the wallet and fund it
        with the account's cash (or ``startingBalance`` of it)."""
        _only(doc, {"agentId", "walletAddress", "walletType", "startingBalance"})
        agent = self.agent(user, _text(doc, "agentId"))
        wallet = self.wallet(user, _text(doc, "walletAddress"))
        if "walletType" in doc and doc["walletType"] != wallet.wallet_type.value:
            raise invalid(
                f"walletType does not match the wallet ({wallet.wallet_type.value})", field="walletType"
            )
        if wallet.wallet_type is not agent.trading_mode:
            raise conflict(
                f"A {wallet.wallet_type.value} wallet cannot serve an agent in "
                f"{agent.trading_mode.value} mode",
                "TRADING_MODE_MISMATCH",
            )
        if wallet.agent_id is not None and wallet.agent_id != agent.id:
            raise conflict("The wallet is assigned to another agent", "WALLET_IN_USE")
        if agent.wallet_address is not None:
            raise conflict("The agent already has a wallet; reset it first", "WALLET_ALREADY_ASSIGNED")
        starting = doc.get("startingBalance")
        if starting is not None and (
            isinstance(starting, bool) or not isinstance(starting, int | float) or starting <= 0
        ):
            raise invalid("startingBalance must be a positive number", field="startingBalance")
        try:
            portfolio = await self.trader.exchange.portfolio(WalletKeys(wallet.api_key, wallet.api_secret))
        except ExchangeUnavailable as exc:
            raise EngineError(502, "EXCHANGE_UNAVAILABLE", str(exc)[:300]) from None
        cash = _cash_of(portfolio)
        if starting is not None:
            cash = min(cash, Decimal(str(starting)))
        wallet.agent_id = agent.id
        agent.wallet_address = wallet.address
        agent.updated_at = now_iso(self.wall)
        with self.store.batch():
            self.trader.save_wallet(wallet)
            self.trader.deposit(agent, cash)
        return agent

    def reset_wallet(self, user: str, doc: dict[str, Any]) -> TradingAgent:
        """``{agentId}`` or ``{walletAddress}``: unassign the wallet and clear the agent's positions,
        balances, transactions, swaps and snapshots (the exchange account itself is untouched)."""
        _only(doc, {"agentId", "walletAddress"})
        if "walletAddress" in doc:
            wallet = self.wallet(user, _text(doc, "walletAddress"))
            if wallet.agent_id is None:
                raise conflict("The wallet is not assigned to an agent", "WALLET_NOT_ASSIGNED")
            agent = self.agent(user, wallet.agent_id)
        else:
            agent = self.agent(user, _text(doc, "agentId"))
        self._refuse_while_trading(agent)
        with self.store.batch():
            self._clear(agent)
            self.trader.save_agent(agent)
        return agent

    def _clear(self, agent: TradingAgent) -> None:
        for table in ("positions", "transactions", "swaps", "snapshots"):
            self.store.delete(table, agent_id=agent.id)
        self.trader.positions.pop(agent.id, None)
        wallet = self.trader.wallets.get(agent.wallet_address or "")
        if wallet is not None:
            wallet.agent_id = None
            self.trader.save_wallet(wallet)
        agent.wallet_address = None
        agent.cash = agent.fees_paid = agent.day_start_equity = agent.peak_equity = Decimal(0)
        agent.halted = None

    # ------------------------------------------------------------------------------ signals

    def post_signal(self, user: str, signal: SignalInput) -> tuple[dict[str, Any], list[Execution]]:
        """Store ``signal`` posted by ``user`` and decide it for every following agent.

        Buys and sells it leads to run in the background (:meth:`settled` waits for them); the
        execution records come back at once, the pending ones ``PENDING``.
        """
        started = time.perf_counter()
        now = self.wall()
        key = dedupe_key(user, signal)
        self._forget_old(now)
        seen = self._recent.get(key)
        if seen is not None and (now - seen) * 1000 < self.duplicate_window_ms:
            raise conflict(
                "The same signal (token, type and strength) was received in the last "
                f"{self.duplicate_window_ms / 1000:g} seconds",
                "SIGNAL_DUPLICATE",
            )
        stamp = now_iso(self.wall)
        doc: dict[str, Any] = {
            "tokenAddress": signal.token_address,
            "symbol": signal.symbol,
            "signalType": signal.signal_type,
            "signalStrength": signal.signal_strength,
            "activationReason": signal.activation_reason,
            "source": signal.source,
            "userId": user,
            "createdAt": stamp,
        }
        executions: list[Execution] = []
        work: list[Any] = []
        pending_before = {agent_id: set(tokens) for agent_id, tokens in self.trader.pending.items()}
        try:
            with self.store.batch():
                signal_id = self.store.add_signal(user, doc)
                doc["id"] = signal_id
                self.store.update_signal(signal_id, doc)
                for agent in list(self.trader.agents.values()):
                    if not publisher_matches(agent, user):
                        continue
                    execution = Execution(signal_id, agent.id, ExecutionStatus.PENDING, stamp, stamp)
                    job = self._decide(agent, signal, signal_id, execution)
                    if job is not None:
                        work.append(job)
                    executions.append(execution)
                self.store.put_many(
                    "executions",
                    [({"signal_id": e.signal_id, "agent_id": e.agent_id}, e.view()) for e in executions],
                )
        except BaseException:
            # Nothing was written: no trade may start, and no token may stay reserved for one.
            for job in work:
                job.close()
            self.trader.pending = pending_before
            raise
        self._recent[key] = now
        counters = self.trader.counters
        counters.signals += 1
        counters.evaluations += len(executions)
        counters.signal_seconds += time.perf_counter() - started
        for job in work:
            self.trader.spawn(job)
        return doc, executions

    def _forget_old(self, now: float) -> None:
        if len(self._recent) > 10_000:
            cutoff = now - self.duplicate_window_ms / 1000
            self._recent = {k: t for k, t in self._recent.items() if t >= cutoff}

    def _decide(
        self, agent: TradingAgent, signal: SignalInput, signal_id: int, execution: Execution
    ) -> Any | None:
        """Settle ``execution`` now (SKIPPED) or return the trade to run for it (left PENDING)."""

        def skip(code: str, message: str) -> None:
            execution.status = ExecutionStatus.SKIPPED
            execution.error_code, execution.error_message = code, message

        trader = self.trader
        if not agent.automated:
            reason = f" (paused by {agent.halted})" if agent.halted else ""
            skip(
                "AGENT_INACTIVE",
                f"Automated {agent.trading_mode.value} trading is off for this agent{reason}",
            )
            return None
        if agent.wallet_address is None or agent.wallet_address not in trader.wallets:
            skip("WALLET_NOT_FOUND", "The agent has no wallet assigned")
            return None
        wallet = trader.wallets[agent.wallet_address]
        if wallet.wallet_type is not agent.trading_mode:
            skip("TRADING_MODE_MISMATCH", "The agent's mode does not match its wallet")
            return None
        listing = trader.listing(signal.token_address) or (
            trader.listing(signal.symbol) if signal.symbol else None
        )
        if signal.is_sell:
            position = (
                None if listing is None else trader.positions.get(agent.id, {}).get(listing.token_address)
            )
            if position is None:
                skip("POSITION_NOT_FOUND", "The agent holds no position in this token")
                return None
            if position.id in trader.selling:
                skip("SALE_IN_PROGRESS", "A sale of this position is already in progress")
                return None
            execution.position_id = position.id
            return self._signal_sell(agent, position, execution)
        if listing is None:
            skip("UNKNOWN_TOKEN", "The exchange lists no instrument with this token address or symbol")
            return None
        # Decided on the listed token's address, whatever spelling the signal used.
        canonical = SignalInput(
            listing.token_address,
            signal.symbol or listing.symbol,
            signal.signal_type,
            signal.signal_strength,
            signal.activation_reason,
            signal.source,
        )
        decision = decide_entry(canonical, agent.config, trader.book(agent))
        if not isinstance(decision, Entry):
            skip(decision.code, decision.message)
            return None
        trader.pending.setdefault(agent.id, set()).add(listing.token_address)
        return trader.buy(agent, execution, listing, decision.size, signal_id)

    async def _signal_sell(self, agent: TradingAgent, position: Position, execution: Execution) -> None:
        order = exits.ExitOrder(CloseReason.SIGNAL, position.held, True)
        try:
            trade = await self.trader.sell(agent, position, order)
        except EngineError as refused:
            with self.store.batch():
                self.trader.settle(
                    execution, ExecutionStatus.FAILED, refused.code, refused.message, buy=False
                )
            return
        with self.store.batch():
            execution.transaction_id = trade.sale_transaction_id
            self.trader.settle(execution, ExecutionStatus.EXECUTED, None, None, buy=False)

    async def settled(self, executions: list[Execution], wait_seconds: float = 30.0) -> list[Execution]:
        """The executions once none is PENDING (or ``timeout`` passed), read back from the store."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while loop.time() < deadline:
            current = [self.execution(e.signal_id, e.agent_id) or e for e in executions]
            if all(e.status is not ExecutionStatus.PENDING for e in current):
                return current
            await asyncio.sleep(0.02)
        return [self.execution(e.signal_id, e.agent_id) or e for e in executions]

    def execution(self, signal_id: int, agent_id: str) -> Execution | None:
        """One execution record as stored."""
        docs = self.store.docs("executions", signal_id=signal_id, agent_id=agent_id)
        return Execution.from_view(docs[0]) if docs else None

    def signal(self, user: str, signal_id: int) -> tuple[dict[str, Any], list[Execution]]:
        """A signal ``user`` posted, with the executions of ``user``'s own agents."""
        rows = self.store.rows("SELECT doc FROM signals WHERE id = ? AND user_id = ?", (signal_id, user))
        if not rows:
            raise not_found("Signal", "SIGNAL_NOT_FOUND")
        doc: dict[str, Any] = json.loads(rows[0][0])
        mine = {a.id for a in self.list_agents(user)}
        executions = [
            Execution.from_view(d)
            for d in self.store.docs("executions", order="agent_id", signal_id=signal_id)
            if d["agentId"] in mine
        ]
        return doc, executions

    def signals(self, user: str, limit: int, offset: int) -> list[dict[str, Any]]:
        """``user``'s signals, newest first."""
        rows = self.store.rows(
            "SELECT doc FROM signals WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (user, limit, offset),
        )
        return [json.loads(row[0]) for row in rows]

    def delete_signal(self, user: str, signal_id: int) -> None:
        """Delete a signal ``user`` posted and its execution records (trades it made stay)."""
        self.signal(user, signal_id)
        with self.store.batch():
            self.store.delete("signals", id=signal_id)
            self.store.delete("executions", signal_id=signal_id)

    # ------------------------------------------------------------------------------ positions

    def positions(self, user: str, agent_id: str | None = None) -> list[Position]:
        """Open positions of ``user``'s agents (or one of them)."""
        agents = [self.agent(user, agent_id)] if agent_id else self.list_agents(user)
        return [p for a in agents for p in self.trader.open_positions(a.id)]

    def position(
        self, user: str, position_id: str, agent_id: str | None = None
    ) -> tuple[TradingAgent, Position]:
        """One open position of ``user``'s (404 otherwise)."""
        for position in self.positions(user, agent_id):
            if position.id == position_id:
                return self.trader.agents[position.agent_id], position
        raise not_found("Position", "POSITION_NOT_FOUND")

    async def close_position(
        self, user: str, position_id: str, agent_id: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """Sell all of a position now (closeReason ``manual`` unless another is named)."""
        agent, position = self.position(user, position_id, agent_id)
        if reason not in MANUAL_CLOSE_REASONS:
            raise invalid("reason must be one of manual, stop_loss, take_profit", field="reason")
        close_reason = CloseReason(reason or "manual")
        trade = await self.trader.sell(agent, position, exits.ExitOrder(close_reason, position.held, True))
        return trade_view(trade)

    def initial_positions(self, agent_id: str) -> list[dict[str, Any]]:
        """The enriched positions a new follower of ``agent_id`` starts from."""
        return [position_view(p) for p in self.trader.open_positions(agent_id)]

    # ------------------------------------------------------------------------------ ledgers

    def ledger(
        self, user: str, table: str, agent_id: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Rows of ``transactions`` or ``swaps`` of ``user``'s agents (or one), newest first."""
        agents = [self.agent(user, agent_id).id] if agent_id else [a.id for a in self.list_agents(user)]
        if not agents:
            return []
        marks = ",".join("?" for _ in agents)
        rows = self.store.rows(
            f"SELECT doc FROM {table} WHERE agent_id IN ({marks}) ORDER BY seq DESC LIMIT ? OFFSET ?",  # noqa: S608
            (*agents, limit, offset),
        )
        return [json.loads(row[0]) for row in rows]

    def trades(self, agent_id: str) -> list[Any]:
        """Every closed trade of ``agent_id``, oldest first."""
        return [trade_from_record(d) for d in self.store.docs("swaps", order="seq", agent_id=agent_id)]

    def balances(self, user: str, agent_id: str | None) -> list[dict[str, Any]]:
        """``AgentBalance`` rows: each agent's quote cash, then each token it holds."""
        agents = [self.agent(user, agent_id)] if agent_id else self.list_agents(user)
        out: list[dict[str, Any]] = []
        for agent in agents:
            if agent.wallet_address is None:
                continue
            out.append(
                {
                    "id": f"{agent.id}:USD",
                    "agentId": agent.id,
                    "walletAddress": agent.wallet_address,
                    "tokenAddress": "USD",
                    "tokenSymbol": "USD",
                    "balance": agent.cash,
                    "priceSol": Decimal(1),
                    "lastUpdated": agent.updated_at,
                }
            )
            for position in self.trader.open_positions(agent.id):
                out.append(
                    {
                        "id": f"{agent.id}:{position.token_address}",
                        "agentId": agent.id,
                        "walletAddress": agent.wallet_address,
                        "tokenAddress": position.token_address,
                        "tokenSymbol": position.token_symbol,
                        "balance": position.held,
                        "priceSol": position.price(),
                        "lastUpdated": iso(position.updated_ms or position.created_ms),
                    }
                )
        return [plain(row) for row in out]

    def performance(self, user: str, agent_id: str, timeframe: str) -> Performance:
        """The agent's performance over ``24h`` or ``all`` (simulated time)."""
        agent = self.agent(user, agent_id)
        if timeframe not in ("24h", "all"):
            raise invalid("timeframe must be '24h' or 'all'", field="timeframe")
        since = self.trader.now_ms - 86_400_000 if timeframe == "24h" else None
        snapshots = [
            snapshot_from_record(d)
            for d in self.store.docs("snapshots", order="timestamp_ms", agent_id=agent.id)
        ]
        return performance(
            self.trades(agent.id),
            snapshots,
            self.trader.open_positions(agent.id),
            agent.cash,
            agent.fees_paid,
            since_ms=since,
        )

    def balance_history(self, user: str, agent_id: str, timeframe: str) -> list[Any]:
        """The agent's snapshots: hourly over the last 24 h, or one a day for ``all``."""
        agent = self.agent(user, agent_id)
        if timeframe not in ("24h", "all"):
            raise invalid("timeframe must be '24h' or 'all'", field="timeframe")
        snapshots = [
            snapshot_from_record(d)
            for d in self.store.docs("snapshots", order="timestamp_ms", agent_id=agent.id)
        ]
        return snapshot_points(snapshots, timeframe, self.trader.now_ms)


def _only(doc: object, allowed: frozenset[str] | set[str]) -> None:
    if not isinstance(doc, dict):
        raise invalid("The body must be a JSON object")
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise invalid(f"Unknown field: {unknown[0]}", field=unknown[0])


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        raise invalid(f"{name} is required", field=name)
    return value


def _config(doc: object, base: TradingConfig) -> TradingConfig:
    try:
        return parse_config(doc, base)
    except ConfigError as error:
        first = error.errors[0]
        raise invalid(
            f"{first.field}: {first.message}",
            "INVALID_CONFIG",
            field=first.field,
            errors=[{"field": e.field, "message": e.message} for e in error.errors],
        ) from None


def signal_error(error: SignalError) -> EngineError:
    """A refused signal body as the API's 400."""
    first = error.errors[0]
    return invalid(
        first.message,
        "INVALID_SIGNAL",
        field=first.field,
        errors=[{"field": e.field, "message": e.message} for e in error.errors],
    )


def _cash_of(portfolio: dict[str, Any]) -> Decimal:
    data = portfolio.get("data", portfolio)
    cash = data.get("cash") if isinstance(data, dict) else None
    if isinstance(cash, bool) or not isinstance(cash, int | float | str | Decimal):
        raise EngineError(502, "EXCHANGE_UNAVAILABLE", "The exchange's portfolio has no cash figure")
    try:
        value = Decimal(str(cash))
    except ArithmeticError:
        raise EngineError(
            502, "EXCHANGE_UNAVAILABLE", "The exchange's portfolio has a bad cash figure"
        ) from None
    return max(value, Decimal(0))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]
