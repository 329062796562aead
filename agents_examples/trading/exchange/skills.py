"""The exchange's A2A skills: ``market-data``, ``portfolio``, ``place-order``, ``cancel-order`` and the
``order-updates`` subscription.

**Authentication.** Every skill but ``market-data`` names its account by an ``auth`` object in the
message's data part, ``{"apiKey", "timestamp", "signature"}``, signed with the account's secret by the
REST API's scheme: ``hex(HMAC-SHA256(secret, timestamp + METHOD + path + body))``. What is signed:

- ``portfolio``: ``GET /portfolio``, empty body (``read:portfolio``);
- ``place-order``: ``POST /orders`` over the ``order`` field, the order's JSON sent as a string, so the
  bytes checked are the bytes signed and no canonical form is needed (``write:orders``);
- ``cancel-order``: ``DELETE /orders/{orderId}``, empty body (``write:orders``);
- ``order-updates``: ``GET /order-updates``, empty body (``read:portfolio``).

The check is the REST guard's own (:meth:`AgentConnectApi.admit`): the key's 60/min budget, the 30 s
window, one nonce store (a signature is accepted once, whether it came over REST, A2A or through the
gateway), then the permission. A signature is required over A2A for sandbox keys too: it is what names
the account. The account is always the one the signature names; ``ctx.caller`` (the gateway's verified
assertion) is only recorded, in the log and in the artifact's metadata.

**Outcomes.** A refusal (authentication, permission, a bad order, a breaker, the balance, an unknown
order) ends the task ``TASK_STATE_REJECTED`` with ``"CODE: message"`` as its status message; an order
the engine accepted completes the task with an artifact holding ``{"order": view}``. Amounts are JSON
numbers (the REST API's exact decimals, parsed).

**market-data** takes an optional ``since`` (simulated ms): each instrument's entry then adds ``range
{since, fromMs, toMs, low, high}``, the low and high of the ticks replayed from ``fromMs`` (``since``
clamped to the replay) to now, so a client whose ``order-updates`` stream dropped can check what it
missed (a stop-loss crossed in the gap) before it subscribes again.

**order-updates** is a subscription: each of the account's order, fill and breaker events, and each
bar's close price (with the bar's volume) of every instrument, is an artifact until the caller
cancels. Each subscriber has a bounded queue (:data:`QUEUE_SIZE`); one that falls that far behind is
dropped (its task fails with ``SLOW_CONSUMER``), and a canceled or dropped subscriber is removed from
the hub at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Final

from a2a_gateway.agent import AgentEvent, ArtifactChunk, Skill, SkillContext, Status, skill
from a2a_gateway.protocol import v1
from agents_examples.trading.exchange.api.jsonenc import dumps
from agents_examples.trading.exchange.api.routes import (
    ORDER_FIELDS,
    AgentConnectApi,
    ApiError,
    order_doc,
    parse_object,
)
from agents_examples.trading.exchange.engine import (
    BreakerEvent,
    Event,
    ExchangeError,
    Fill,
    OrderStatus,
    OrderUpdate,
    units_decimal,
)
from agents_examples.trading.exchange.market.bars import Bar
from agents_examples.trading.exchange.market.instruments import UnknownInstrumentError
from agents_examples.trading.exchange.market.simulator import CLOSE
from agents_examples.trading.exchange.store import AccountRecord

log = logging.getLogger(__name__)

QUEUE_SIZE: Final = 1000
UPDATES_PATH: Final = "/order-updates"
MAX_ORDER_CHARS: Final = 4096


class Refused(Exception):
    """A skill's refusal: the task ends REJECTED with ``"code: message"``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def jsonable(doc: object) -> Any:
    """A view with Decimals as plain JSON values (the REST API's exact numbers, parsed)."""
    return json.loads(dumps(doc))


def _caller_meta(ctx: SkillContext) -> dict[str, Any]:
    caller = ctx.caller
    return {"caller": {"user": caller.user, "viaGateway": caller.via_gateway, "gatewayTask": caller.task}}


@dataclass(eq=False, slots=True)
class Subscriber:
    """One ``order-updates`` task's queue."""

    account_id: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False


class UpdatesHub:
    """Fans the engine's events (per account) and bar closes (to everyone) out to subscribers."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}

    def add(self, account_id: str) -> Subscriber:
        """A new subscriber for ``account_id``."""
        subscriber = Subscriber(account_id)
        self._subscribers.setdefault(account_id, set()).add(subscriber)
        return subscriber

    def remove(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber`` (no error when it is already gone)."""
        found = self._subscribers.get(subscriber.account_id)
        if found is not None:
            found.discard(subscriber)
            if not found:
                del self._subscribers[subscriber.account_id]

    @property
    def count(self) -> int:
        """How many subscribers the hub holds."""
        return sum(len(s) for s in self._subscribers.values())

    def _offer(self, subscriber: Subscriber, doc: dict[str, Any]) -> None:
        try:
            subscriber.queue.put_nowait(doc)
        except asyncio.QueueFull:
            subscriber.dropped = True
            self.remove(subscriber)
            log.warning(
                "order-updates subscriber of %s dropped: %d events behind", subscriber.account_id, QUEUE_SIZE
            )

    def on_event(self, event: Event) -> None:
        """The engine's listener."""
        subscribers = self._subscribers.get(event.account_id)
        if not subscribers:
            return
        doc: dict[str, Any]
        if isinstance(event, OrderUpdate):
            doc = {"type": "order", "timestamp": event.ts_ms, "order": order_doc(event.order)}
        elif isinstance(event, Fill):
            doc = {"type": "fill", "timestamp": event.ts_ms, "trade": event.trade}
        elif isinstance(event, BreakerEvent):
            doc = {
                "type": "breaker",
                "timestamp": event.ts_ms,
                "code": event.code,
                "state": event.state,
                "limit": event.limit,
                "loss": event.loss,
                "until": event.until_ms,
            }
        doc = jsonable(doc)
        for subscriber in list(subscribers):
            self._offer(subscriber, doc)

    def on_tick(self, symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
        """The simulator's listener: each bar's close price, with the bar's volume (base units), goes to
        every subscriber."""
        if phase != CLOSE or not self._subscribers:
            return
        doc = jsonable(
            {
                "type": "price",
                "symbol": symbol,
                "price": units_decimal(price),
                "volume": units_decimal(bar.volume),
                "timestamp": ts_ms,
            }
        )
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                self._offer(subscriber, doc)


class ExchangeSkills:
    """The skills over one REST API object (its service, rate budgets and nonce store)."""

    def __init__(self, api: AgentConnectApi) -> None:
        self.api = api
        self.service = api.service
        self.hub = UpdatesHub()
        self.service.engine.subscribe(self.hub.on_event)
        self.service.simulator.add_listener(self.hub.on_tick)

    async def authenticate(
        self, data: object, method: str, path: str, body: str, permission: str
    ) -> AccountRecord:
        """The account the ``auth`` object's signature names, checked as the REST guard does."""
        auth = data.get("auth") if isinstance(data, dict) else None
        if not isinstance(auth, dict):
            raise Refused(
                "UNAUTHENTICATED", 'a data part with "auth": {apiKey, timestamp, signature} is required'
            )
        api_key, timestamp, signature = (auth.get(k) for k in ("apiKey", "timestamp", "signature"))
        account = self.service.by_key(api_key) if isinstance(api_key, str) and api_key else None
        if account is None:
            raise Refused("UNAUTHENTICATED", "auth.apiKey is missing or unknown")
        if isinstance(timestamp, int) and not isinstance(timestamp, bool):
            timestamp = str(timestamp)
        try:
            await self.api.admit(
                account,
                permission,
                signed=True,
                method=method,
                path=path,
                body=body.encode(),
                timestamp=timestamp if isinstance(timestamp, str) else None,
                signature=signature if isinstance(signature, str) else None,
            )
        except ApiError as error:
            raise Refused(error.code, error.message) from None
        return account

    # ------------------------------------------------------------------------------ skills

    def market_data(self) -> Skill:
        """``market-data``: what ``GET /market`` answers; public, no auth object."""

        @skill(
            "market-data",
            "Market data",
            'Prices and 24h stats of the listed instruments, as GET /market answers: data {"coins": '
            '"bitcoin,ETH"} or the coins as text (all when empty). With "since" (simulated ms) each '
            "entry adds range {since, fromMs, toMs, low, high}: the low and high of the ticks replayed "
            "since then (to catch up after a lost feed). Public: no auth object.",
            tags=["trading", "market-data"],
            examples=["BTC,ETH"],
        )
        async def market_data(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            data = ctx.data
            coins = data.get("coins") if isinstance(data, dict) else ctx.text.strip() or None
            since = data.get("since") if isinstance(data, dict) else None
            if coins is not None and not isinstance(coins, str):
                yield Status(v1.TaskState.REJECTED, "INVALID_REQUEST: coins must be a string")
                return
            if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
                yield Status(v1.TaskState.REJECTED, "INVALID_REQUEST: since must be simulated ms (an int)")
                return
            try:
                doc = self.api.market_doc(coins)
            except UnknownInstrumentError as error:
                yield Status(v1.TaskState.REJECTED, f"{error.code}: {error}")
                return
            if since is not None:
                self._add_ranges(doc, since)
            yield ArtifactChunk.of_data(jsonable(doc), name="market")

        return market_data

    def _add_ranges(self, doc: dict[str, Any], since: int) -> None:
        """Each entry's ``range``: the low and high of its ticks from ``since`` (clamped to the replay,
        the start used in ``fromMs``) to now; computed in the same step as the prices, so they agree."""
        simulator = self.service.simulator
        for entry in doc["data"]:
            found = simulator.price_range(entry["symbol"], since)
            entry["range"] = {
                "since": since,
                "fromMs": found.from_ms,
                "toMs": found.to_ms,
                "low": units_decimal(found.low),
                "high": units_decimal(found.high),
            }

    def portfolio(self) -> Skill:
        """``portfolio``: what ``GET /portfolio`` answers for the signing account."""

        @skill(
            "portfolio",
            "Portfolio",
            "The signing account's cash, positions, balances and breakers, as GET /portfolio answers. "
            'Data {"auth": {apiKey, timestamp, signature}} over GET /portfolio with an empty body '
            "(read:portfolio).",
            tags=["trading", "portfolio"],
        )
        async def portfolio(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            try:
                account = await self.authenticate(ctx.data, "GET", "/portfolio", "", "read:portfolio")
            except Refused as refused:
                yield Status(v1.TaskState.REJECTED, str(refused))
                return
            doc = {"data": self.service.engine.portfolio(account.id)}
            yield ArtifactChunk.of_data(jsonable(doc), name="portfolio", metadata=_caller_meta(ctx))

        return portfolio

    def place_order(self) -> Skill:
        """``place-order``: the signed order string placed for the signing account."""

        @skill(
            "place-order",
            "Place order",
            'Places an order: data {"order": "<the order as a JSON string: symbol, side, type, '
            'quantity, price, clientOrderId (required)>", "auth": {apiKey, timestamp, signature}} signed '
            "over POST /orders and that exact string (write:orders). Completes with the order; a refusal "
            "ends REJECTED with its code (DAILY_LOSS_LIMIT, MAX_POSITION_SIZE, INSUFFICIENT_BALANCE, …).",
            tags=["trading", "orders"],
        )
        async def place_order(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            try:
                view, rejected = await self._place(ctx)
            except Refused as refused:
                yield Status(v1.TaskState.REJECTED, str(refused))
                return
            if rejected is not None:
                yield Status(v1.TaskState.REJECTED, rejected, metadata={"order": view})
                return
            yield ArtifactChunk.of_data({"order": view}, name="order", metadata=_caller_meta(ctx))

        return place_order

    async def _place(self, ctx: SkillContext) -> tuple[dict[str, Any], str | None]:
        data = ctx.data
        order = data.get("order") if isinstance(data, dict) else None
        if not isinstance(order, str):
            raise Refused("INVALID_REQUEST", 'the order must be sent as a JSON string in "order"')
        if len(order) > MAX_ORDER_CHARS:
            raise Refused("PAYLOAD_TOO_LARGE", f"the order must be at most {MAX_ORDER_CHARS} characters")
        account = await self.authenticate(data, "POST", "/orders", order, "write:orders")
        try:
            doc = parse_object(order.encode(), ORDER_FIELDS | {"apiKey"})
            named = doc.pop("apiKey", None)
            if named is not None and self.service.by_key(str(named)) is not account:
                raise Refused("INVALID_REQUEST", "the order's apiKey is not the key that signed it")
            cid = doc.get("clientOrderId")
            if not isinstance(cid, str) or not cid:
                raise Refused("INVALID_REQUEST", "clientOrderId is required over A2A (it makes a retry safe)")
            request = self.api.order_request(doc)
            service = self.service
            placed = service.engine.place(account.id, request, service.now_ms)
        except ApiError as error:
            raise Refused(error.code, error.message) from None
        except UnknownInstrumentError as error:
            raise Refused(error.code, str(error)) from None
        except ExchangeError as error:
            raise Refused(error.code, error.message) from None
        service.changed()
        view: dict[str, Any] = jsonable(order_doc(service.engine.order_view(placed)))
        log.info(
            "A2A order %s (%s) for %s, caller %s via gateway %s",
            placed.id,
            placed.status.value,
            account.id,
            ctx.caller.user,
            ctx.caller.via_gateway,
        )
        if placed.status is OrderStatus.REJECTED:
            reason = placed.reason or "REJECTED"
            return view, f"{reason}: {placed.message or 'the order was rejected'}"
        return view, None

    def cancel_order(self) -> Skill:
        """``cancel-order``: cancel one of the signing account's open orders."""

        @skill(
            "cancel-order",
            "Cancel order",
            'Cancels an open order: data {"orderId": "ord_…", "auth": {apiKey, timestamp, signature}} '
            "signed over DELETE /orders/{orderId} with an empty body (write:orders).",
            tags=["trading", "orders"],
        )
        async def cancel_order(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            data = ctx.data
            order_id = data.get("orderId") if isinstance(data, dict) else None
            try:
                if not isinstance(order_id, str) or not order_id or "/" in order_id:
                    raise Refused("INVALID_REQUEST", "orderId must be an order id")
                account = await self.authenticate(data, "DELETE", f"/orders/{order_id}", "", "write:orders")
                service = self.service
                try:
                    order = service.engine.cancel(account.id, order_id, service.now_ms)
                except ExchangeError as error:
                    raise Refused(error.code, error.message) from None
            except Refused as refused:
                yield Status(v1.TaskState.REJECTED, str(refused))
                return
            service.changed()
            view = jsonable(order_doc(service.engine.order_view(order)))
            yield ArtifactChunk.of_data({"order": view}, name="order", metadata=_caller_meta(ctx))

        return cancel_order

    def order_updates(self) -> Skill:
        """``order-updates``: the signing account's events and the bar closes until canceled."""

        @skill(
            "order-updates",
            "Order updates",
            "Streams the signing account's order, fill and breaker events and each bar's close price as "
            'artifacts until canceled: data {"auth": {apiKey, timestamp, signature}} signed over '
            f"GET {UPDATES_PATH} with an empty body (read:portfolio).",
            tags=["trading", "orders", "stream"],
            subscription=True,
        )
        async def order_updates(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            try:
                account = await self.authenticate(ctx.data, "GET", UPDATES_PATH, "", "read:portfolio")
            except Refused as refused:
                yield Status(v1.TaskState.REJECTED, str(refused))
                return
            subscriber = self.hub.add(account.id)
            try:
                yield Status(v1.TaskState.WORKING, f"subscribed to {account.id}'s order updates")
                while True:
                    if subscriber.dropped and subscriber.queue.empty():
                        yield Status(
                            v1.TaskState.FAILED,
                            f"SLOW_CONSUMER: more than {QUEUE_SIZE} updates waited; subscribe again",
                        )
                        return
                    doc = await subscriber.queue.get()
                    yield ArtifactChunk.of_data(doc, name=str(doc["type"]))
            finally:
                self.hub.remove(subscriber)

        return order_updates

    def all(self) -> list[Skill]:
        """Every skill, in card order."""
        return [
            self.market_data(),
            self.portfolio(),
            self.place_order(),
            self.cancel_order(),
            self.order_updates(),
        ]
