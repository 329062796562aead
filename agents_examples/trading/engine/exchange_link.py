"""The trading engine's link to the paper exchange: its A2A skills called through the gateway, and the
price feed that keeps the engine's prices current across dropped streams.

The engine knows the exchange only by its wire format (docs/trading.md, "A2A skills"); it never imports
the exchange's code. Every call is an A2A 1.0 JSON-RPC request to the gateway's ``/a2a`` with
``metadata {agentId, skillId}``, authenticated at the gateway by the owner's ``nex_`` key
(``Authorization: Bearer``) and, for every skill but ``market-data``, signed end to end with the wallet's
(the exchange account's) secret in the message's ``auth`` object, so the gateway in the middle can
neither change nor replay an order.

- :class:`ExchangeLink` is one call per method: ``listings`` and ``market`` (public), ``portfolio``,
  ``place_order`` (a blocking ``SendMessage``; the order sent as the exact JSON string that is signed,
  with the caller's ``clientOrderId``, so a retry after a lost answer returns the same order) and
  ``subscribe`` (the ``order-updates`` subscription over SSE, canceled at the gateway when the consumer
  stops).
- :class:`PriceFeed` runs the subscription for ever: each bar close is a :class:`Tick`; when the stream
  drops it backs off, subscribes again and, once the new subscription is open, asks ``market-data`` for
  the low and high of every instrument since its last tick, delivered as one ``catch_up`` tick per
  symbol, so the engine can replay ``[low, high, current]`` and no stop-loss crossed in the gap is
  missed. Live events that queued meanwhile and are not newer than the catch-up are skipped.

The JSON-RPC plumbing is the trading agents' shared
:class:`~agents_examples.trading.gateway_client.GatewayClient`. Upstream answers are untrusted: bodies
and stream events are read up to its bounds, and anything that is not the expected shape is
:class:`ExchangeUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import httpx

from a2a_gateway.auth.signing import sign
from agents_examples.trading.gateway_client import (
    STREAM_IDLE_SECONDS,
    GatewayClient,
    GatewayUnavailable,
    last_data,
    mapping,
    refusal,
    status_text,
    task_state,
)

log = logging.getLogger(__name__)

UPDATES_PATH: Final = "/order-updates"
EXCHANGE_SKILLS: Final = frozenset({"place-order", "order-updates"})


class ExchangeUnavailable(GatewayUnavailable):
    """The exchange could not be reached or answered something unusable: a transport error or timeout,
    a gateway JSON-RPC error (``rpc_code``), a task in an unexpected state, an answer of the wrong shape,
    a stream that dropped."""


class ExchangeRefused(ExchangeUnavailable):
    """The exchange refused a call that is not an order (``portfolio``, ``order-updates``,
    ``market-data``): the task ended REJECTED with ``"CODE: message"``. An order's refusal is not an
    exception but an :class:`OrderOutcome` with ``accepted`` False."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class WalletKeys:
    """An exchange account's key and secret; the secret never shows in a repr or a log."""

    api_key: str
    api_secret: str = field(repr=False)

    def auth(self, method: str, path: str, body: str = "", *, now_ms: int | None = None) -> dict[str, str]:
        """The ``auth`` object of one call: the key, a wall-clock timestamp (ms) and the signature of
        ``timestamp + METHOD + path + body``."""
        timestamp = str(time.time_ns() // 1_000_000 if now_ms is None else now_ms)
        return {
            "apiKey": self.api_key,
            "timestamp": timestamp,
            "signature": sign(self.api_secret, timestamp, method, path, body),
        }


@dataclass(frozen=True)
class Listing:
    """One instrument the exchange lists, at its current price."""

    symbol: str
    token_address: str
    name: str
    price: Decimal
    quote: str


def to_decimal(value: object) -> Decimal:
    """A JSON number (or numeric string) as an exact Decimal, through ``str`` (so ``0.1`` is 0.1)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ExchangeUnavailable(f"expected a number, got {type(value).__name__}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ExchangeUnavailable("expected a number") from None
    if not number.is_finite():
        raise ExchangeUnavailable("expected a finite number")
    return number


@dataclass(frozen=True)
class OrderOutcome:
    """What became of one order: ``accepted`` with the exchange's CCXT order view, or refused with the
    exchange's ``code`` (``INSUFFICIENT_BALANCE``, ``MAX_POSITION_SIZE``, ``UNKNOWN_INSTRUMENT``, …), its
    ``message`` and, when the exchange sent one, the rejected order's view."""

    accepted: bool
    code: str | None
    message: str | None
    order: dict[str, Any] | None

    def _number(self, key: str) -> Decimal | None:
        value = (self.order or {}).get(key)
        return None if value is None else to_decimal(value)

    @property
    def filled(self) -> Decimal:
        """The quantity filled (0 when nothing was)."""
        return self._number("filled") or Decimal(0)

    @property
    def average(self) -> Decimal | None:
        """The average fill price, None before a fill."""
        return self._number("average")

    @property
    def cost(self) -> Decimal:
        """What the fills cost in the quote currency, fees left out."""
        return self._number("cost") or Decimal(0)

    @property
    def fee(self) -> Decimal:
        """The fees paid, in the quote currency."""
        fee = (self.order or {}).get("fee")
        value = fee.get("cost") if isinstance(fee, dict) else None
        return Decimal(0) if value is None else to_decimal(value)

    @property
    def order_id(self) -> str | None:
        value = (self.order or {}).get("orderId") or (self.order or {}).get("id")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str | None:
        """The CCXT status: ``open``, ``closed``, ``canceled``, ``rejected``."""
        value = (self.order or {}).get("status")
        return value if isinstance(value, str) else None


def order_json(order: Mapping[str, Any]) -> str:
    """The order as the exact JSON string that is signed and sent: a flat object, Decimal amounts
    written as JSON numbers in plain notation (``0.01``, never ``1E-2``), everything else as JSON."""

    def value(item: Any) -> str:
        if isinstance(item, Decimal):
            if not item.is_finite():
                raise ValueError("an order amount must be a finite number")
            return format(item, "f")
        return json.dumps(item, separators=(",", ":"))

    return "{" + ",".join(f"{json.dumps(str(k))}:{value(v)}" for k, v in order.items()) + "}"


def _last_data(task: Mapping[str, Any]) -> dict[str, Any]:
    found = last_data(task)
    if found is None:
        raise ExchangeUnavailable("the completed task carries no data artifact")
    return found


class ExchangeLink:
    """The exchange's skills through the gateway at ``gateway_url`` (see the module doc).

    ``caller_key`` gives the owner's ``nex_`` key for each call (None: no Authorization header, for an
    open gateway). ``exchange_agent_id`` is the exchange's agent id at the gateway; without it the link
    discovers it once, the first agent whose card has both ``place-order`` and ``order-updates``.
    ``timeout`` bounds each unary call; a stream may be idle up to ``stream_idle`` seconds."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        gateway_url: str,
        caller_key: Callable[[], str | None],
        *,
        exchange_agent_id: str | None = None,
        timeout: float = 15.0,
        stream_idle: float = STREAM_IDLE_SECONDS,
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        self.gateway = GatewayClient(
            client,
            gateway_url,
            caller_key,
            timeout=timeout,
            stream_idle=stream_idle,
            unavailable=ExchangeUnavailable,
        )
        self._agent_id = exchange_agent_id
        self._wall_ms = wall_ms
        self._discovering = asyncio.Lock()

    # ------------------------------------------------------------------------------ plumbing

    def _auth(self, keys: WalletKeys, method: str, path: str, body: str = "") -> dict[str, str]:
        return keys.auth(method, path, body, now_ms=None if self._wall_ms is None else self._wall_ms())

    async def _send(self, skill: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """A blocking SendMessage to ``skill``; the task it ended in."""
        return await self.gateway.send(await self.exchange_id(), skill, data)

    async def _completed(self, skill: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The data artifact of a skill call that must complete (REJECTED: ExchangeRefused)."""
        task = await self._send(skill, data)
        state = task_state(task)
        if state == "TASK_STATE_REJECTED":
            raise ExchangeRefused(*refusal(status_text(task)))
        if state != "TASK_STATE_COMPLETED":
            raise ExchangeUnavailable(f"the {skill} task ended {state or 'in no state'}")
        return _last_data(task)

    # ------------------------------------------------------------------------------ discovery

    async def exchange_id(self) -> str:
        """The exchange's agent id at the gateway: the configured one, else discovered once."""
        if self._agent_id is not None:
            return self._agent_id
        async with self._discovering:
            if self._agent_id is None:
                self._agent_id = await self.gateway.discover(EXCHANGE_SKILLS, tags="trading")
            return self._agent_id

    # ------------------------------------------------------------------------------ skills

    async def market(self, *, since: int | None = None, coins: str | None = None) -> dict[str, Any]:
        """What ``market-data`` answers (``{data: [...], meta}``); with ``since`` (simulated ms) each
        entry carries ``range {since, fromMs, toMs, low, high}``."""
        data: dict[str, Any] = {}
        if coins is not None:
            data["coins"] = coins
        if since is not None:
            data["since"] = since
        doc = await self._completed("market-data", data)
        if not isinstance(doc.get("data"), list):
            raise ExchangeUnavailable("market-data answered no instruments")
        return doc

    async def listings(self) -> list[Listing]:
        """Every instrument the exchange lists, at its current price."""
        found = []
        for entry in (await self.market())["data"]:
            item = mapping(entry)
            texts = [item.get(k) for k in ("symbol", "tokenAddress", "name", "quote")]
            if not all(isinstance(t, str) for t in texts):
                raise ExchangeUnavailable("a market-data entry is not an instrument")
            symbol, token, name, quote = (str(t) for t in texts)
            found.append(Listing(symbol, token, name, to_decimal(item.get("price")), quote))
        return found

    async def portfolio(self, keys: WalletKeys) -> dict[str, Any]:
        """The account's portfolio (what ``GET /portfolio`` answers in ``data``: totalValue, cash,
        positions, balances, limits, …), signed over ``GET /portfolio``."""
        doc = await self._completed("portfolio", {"auth": self._auth(keys, "GET", "/portfolio")})
        found = doc.get("data")
        if not isinstance(found, dict):
            raise ExchangeUnavailable("portfolio answered no portfolio")
        return found

    async def place_order(self, keys: WalletKeys, order: Mapping[str, Any]) -> OrderOutcome:
        """Place ``order`` (``symbol, side, type, quantity, price?, clientOrderId``) for the account.

        The order goes as the exact JSON string that is signed over ``POST /orders``. A transport error
        (or the gateway saying the exchange is unreachable) is retried once with a fresh signature: the
        exchange answers the same order for the same ``clientOrderId``. Accepted (the task completed):
        the order view; refused (REJECTED): the code, message and, when sent, the view; anything else:
        :class:`ExchangeUnavailable`."""
        cid = order.get("clientOrderId")
        if not isinstance(cid, str) or not cid:
            raise ValueError("an order needs a clientOrderId (it makes a retry safe)")
        text = order_json(order)
        try:
            task = await self._send("place-order", self._signed_order(keys, text))
        except ExchangeUnavailable as error:
            if not error.retryable:
                raise
            log.warning("place-order %s: %s; retrying once", cid, error)
            task = await self._send("place-order", self._signed_order(keys, text))
        state = task_state(task)
        if state == "TASK_STATE_COMPLETED":
            view = _last_data(task).get("order")
            if not isinstance(view, dict):
                raise ExchangeUnavailable("place-order completed without an order")
            return OrderOutcome(True, None, None, view)
        if state == "TASK_STATE_REJECTED":
            code, message = refusal(status_text(task))
            return OrderOutcome(False, code, message, _rejected_view(task))
        raise ExchangeUnavailable(f"the place-order task ended {state or 'in no state'}")

    def _signed_order(self, keys: WalletKeys, text: str) -> dict[str, Any]:
        return {"order": text, "auth": self._auth(keys, "POST", "/orders", text)}

    async def subscribe(
        self, keys: WalletKeys, *, on_open: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The ``order-updates`` subscription: each event's data part (``{"type": "price", symbol,
        price, volume, timestamp}``, ``order``, ``fill``, ``breaker``) as it comes.

        ``on_open`` is awaited once the exchange says the subscription is working (events that arrive
        meanwhile wait in the stream). Ends when the task ends canceled or completed; raises
        :class:`ExchangeRefused` when the exchange refuses it and :class:`ExchangeUnavailable` when the
        stream fails or drops. Close the iterator (``contextlib.aclosing``) to stop early: the gateway's
        task is then canceled, which ends the exchange's subscription."""
        auth = {"auth": self._auth(keys, "GET", UPDATES_PATH)}
        opened = False
        stream = self.gateway.stream(await self.exchange_id(), "order-updates", auth)
        async with contextlib.aclosing(stream) as updates:
            async for update in updates:
                state = update.state
                if state == "TASK_STATE_WORKING" and not opened:
                    opened = True
                    if on_open is not None:
                        await on_open()
                elif state in ("TASK_STATE_CANCELED", "TASK_STATE_COMPLETED"):
                    return
                elif state == "TASK_STATE_REJECTED":
                    raise ExchangeRefused(*refusal(update.text))
                elif state not in ("", "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"):
                    why = update.text or state
                    raise ExchangeUnavailable(f"order-updates ended: {why}"[:500], retryable=True)
                for data in update.data:
                    yield data


def _rejected_view(task: Mapping[str, Any]) -> dict[str, Any] | None:
    """The rejected order's view when the answer carries it (the status message's or task's metadata)."""
    status = mapping(task.get("status"))
    for holder in (
        mapping(status.get("message")).get("metadata"),
        status.get("metadata"),
        task.get("metadata"),
    ):
        view = mapping(holder).get("order")
        if isinstance(view, dict):
            return view
    return None


# ---------------------------------------------------------------------------------- the price feed


async def _until_stopped(work: Coroutine[Any, Any, bool], stop: asyncio.Event) -> bool:
    """Run ``work`` until it ends (what it returned) or ``stop`` is set (it is canceled: False)."""
    running = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (running, stopping):
            task.cancel()
        await asyncio.wait({running, stopping})
    if running.cancelled():
        return False
    return running.result()


@dataclass(frozen=True)
class Tick:
    """A price of one instrument at a simulated time. A live tick is a bar close, with the bar's
    ``volume`` in base units when the exchange sent one. A ``catch_up`` tick follows a dropped stream: it
    carries the ``low`` and ``high`` of the gap and the current ``price``, to be replayed in that order
    (and no volume: it is no bar)."""

    symbol: str
    token_address: str
    price: Decimal
    timestamp_ms: int
    low: Decimal | None = None
    high: Decimal | None = None
    catch_up: bool = False
    volume: Decimal | None = None


class PriceFeed:
    """Keeps ``on_ticks`` fed with the exchange's bar closes, reconnecting and catching up (module doc).

    ``keys`` gives the wallet to subscribe with (None: wait and try again). ``on_event`` (optional) gets
    the stream's other events (order, fill, breaker). ``backoff`` are the pauses after successive
    failures (the last repeats), slept with ``sleep`` (tests inject one that does not wait). Health:
    ``connected``, ``last_tick_ms`` (simulated), ``reconnects``."""

    def __init__(
        self,
        link: ExchangeLink,
        keys: Callable[[], WalletKeys | None],
        on_ticks: Callable[[list[Tick]], Awaitable[None]],
        *,
        on_event: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        backoff: Sequence[float] = (0.5, 1, 2, 5),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not backoff:
            raise ValueError("backoff needs at least one pause")
        self._link = link
        self._keys = keys
        self._on_ticks = on_ticks
        self._on_event = on_event
        self._backoff = tuple(backoff)
        self._sleep = sleep
        self._tokens: dict[str, str] = {}
        self._unlisted: set[str] = set()
        self._catch_up_due = False
        self.connected = False
        self.last_tick_ms: int | None = None
        self.reconnects = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Subscribe, deliver, reconnect until ``stop`` is set. After a subscription that opened the
        first pause is ``backoff[0]``; each further failure in a row waits the next one."""
        failures = 0
        while not stop.is_set():
            keys = self._keys()
            if keys is not None:
                opened = await _until_stopped(self._follow(keys), stop)
                if stop.is_set():
                    return
                self.reconnects += 1
                if opened:
                    failures = 0
            await _until_stopped(self._slept(failures), stop)
            failures += 1

    async def _slept(self, failures: int) -> bool:
        await self._sleep(self._backoff[min(failures, len(self._backoff) - 1)])
        return True

    async def _follow(self, keys: WalletKeys) -> bool:
        """One subscription until it drops; True when it opened (so the next failure starts a new
        backoff). Never raises ExchangeUnavailable: a failure is logged and ends the subscription."""
        opened = False
        floor: list[int | None] = [None]  # live prices not newer than the catch-up are stale

        async def on_open() -> None:
            nonlocal opened
            opened = True
            self.connected = True
            if self._catch_up_due and self.last_tick_ms is not None:
                floor[0] = await self._catch_up(self.last_tick_ms)
            self._catch_up_due = False

        try:
            if not self._tokens:
                await self._refresh_tokens()
            async with contextlib.aclosing(self._link.subscribe(keys, on_open=on_open)) as events:
                async for event in events:
                    if event.get("type") == "price":
                        tick = await self._tick(event)
                        if tick is None or (floor[0] is not None and tick.timestamp_ms <= floor[0]):
                            continue
                        self.last_tick_ms = max(self.last_tick_ms or 0, tick.timestamp_ms)
                        await self._deliver([tick])
                    elif self._on_event is not None:
                        await self._on_event(event)
            log.info("the order-updates subscription ended")
        except ExchangeUnavailable as error:
            log.warning("the price feed dropped: %s", error)
        except Exception:
            log.exception("the price feed failed; subscribing again")
        finally:
            self.connected = False
            if self.last_tick_ms is not None:
                self._catch_up_due = True
        return opened

    async def _catch_up(self, since: int) -> int | None:
        """One catch-up tick per instrument: its low and high since ``since`` and its price now; the
        simulated time they were taken at."""
        doc = await self._link.market(since=since)
        ticks = []
        for entry in doc["data"]:
            item = mapping(entry)
            gap = mapping(item.get("range"))
            symbol, token, stamp = item.get("symbol"), item.get("tokenAddress"), item.get("timestamp")
            if not (isinstance(symbol, str) and isinstance(token, str) and isinstance(stamp, int)) or not gap:
                raise ExchangeUnavailable("market-data answered no range to catch up with")
            self._tokens[symbol] = token
            ticks.append(
                Tick(
                    symbol,
                    token,
                    to_decimal(item.get("price")),
                    stamp,
                    low=to_decimal(gap.get("low")),
                    high=to_decimal(gap.get("high")),
                    catch_up=True,
                )
            )
        if not ticks:
            return None
        now = max(t.timestamp_ms for t in ticks)
        self.last_tick_ms = max(self.last_tick_ms or 0, now)
        await self._deliver(ticks)
        return now

    async def _tick(self, event: Mapping[str, Any]) -> Tick | None:
        symbol, stamp = event.get("symbol"), event.get("timestamp")
        if not isinstance(symbol, str) or not isinstance(stamp, int) or isinstance(stamp, bool):
            raise ExchangeUnavailable("a price event without a symbol or a timestamp")
        if symbol not in self._tokens and symbol not in self._unlisted:
            await self._refresh_tokens()
            if symbol not in self._tokens:
                self._unlisted.add(symbol)
        token = self._tokens.get(symbol)
        if token is None:
            log.warning("a price for %s, which the exchange does not list", symbol)
            return None
        volume = event.get("volume")
        return Tick(
            symbol,
            token,
            to_decimal(event.get("price")),
            stamp,
            volume=None if volume is None else to_decimal(volume),
        )

    async def _refresh_tokens(self) -> None:
        self._tokens.update(
            {listing.symbol: listing.token_address for listing in await self._link.listings()}
        )

    async def _deliver(self, ticks: list[Tick]) -> None:
        try:
            await self._on_ticks(ticks)
        except Exception:
            log.exception("the price feed's consumer failed on %d ticks", len(ticks))
