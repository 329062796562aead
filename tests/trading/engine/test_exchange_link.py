"""The engine's exchange link against a real gateway and a real exchange on loopback servers (a
subscription streams without end, which the in-process transport cannot carry): the exchange registered
at the gateway by its owner, the engine calling it with the owner's nex_ key and an exchange sandbox
account's signatures. Listings, portfolio, orders accepted, refused and retried after a lost answer, the
order-updates stream canceled when the consumer stops, and the price feed reconnecting after the
exchange dropped it, catching up on the gap. A few answers that are not what they should be are served
by a mock transport."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from a2a_gateway.app import create_gateway_app
from agents_examples.trading.engine.exchange_link import (
    ExchangeLink,
    ExchangeRefused,
    ExchangeUnavailable,
    OrderOutcome,
    PriceFeed,
    Tick,
    WalletKeys,
    order_json,
)
from agents_examples.trading.exchange import skills as skills_module
from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.market.bars import Bar
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.skills import UpdatesHub
from agents_examples.trading.exchange.store import AccountStore
from tests.api.test_registry import user
from tests.conftest import LiveServer, free_port, make_settings
from tests.trading.exchange.skill_helpers import ALL

UNIT = Decimal("0.00000001")
ENGINE_SCOPES = ["agents:read", "tasks:read", "tasks:write"]


class Lossy(httpx.AsyncBaseTransport):
    """Loopback HTTP that, once armed, lets the next place-order call through and loses its answer."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.armed = False
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.armed and b'"place-order"' in request.content:
            self.armed = False
            self.lost += 1
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Network:
    gateway_url: str
    app: Starlette
    service: ExchangeService
    agent_id: str
    nex_key: str
    keys: WalletKeys
    account_id: str
    client: httpx.AsyncClient
    transport: Lossy

    @property
    def hub(self) -> UpdatesHub:
        found: UpdatesHub = self.app.state.skills.hub
        return found

    def link(self, **options: Any) -> ExchangeLink:
        return ExchangeLink(self.client, self.gateway_url, lambda: self.nex_key, **options)


@asynccontextmanager
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    service = ExchangeService(AccountStore(tmp_path / "exchange"), load_market_data(use_real=False, seed=7))
    service.simulator.advance(30)
    port, gw_port = free_port(), free_port()
    app = create_exchange_app(
        service, make_settings(tmp_path / "exchange", public_url=f"http://127.0.0.1:{port}"), paced=False
    )
    exchange = LiveServer(app, port)
    gateway = LiveServer(
        create_gateway_app(make_settings(tmp_path / "gw", public_url=f"http://127.0.0.1:{gw_port}")), gw_port
    )
    await exchange.start()
    await gateway.start()
    try:
        transport = Lossy()
        async with httpx.AsyncClient(timeout=10, transport=transport) as client:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as gw:
                gw.headers.update(await user(gw, "owner@example.com"))
                created = await gw.post("/api/v1/agents", json={"cardUrl": exchange.url})
                assert created.status_code == 201, created.text
                minted = await gw.post("/api/v1/api-keys", json={"name": "engine", "scopes": ENGINE_SCOPES})
                assert minted.status_code == 201, minted.text
            nex_key = minted.json()["data"]["key"]
            assert nex_key.startswith("nex_")
            registered = await client.post(
                f"{exchange.url}/v1/agent/register", json={"name": "wallet", "permissions": ALL}
            )
            account = registered.json()["agent"]
            yield Network(
                gateway.url,
                app,
                service,
                created.json()["data"]["id"],
                nex_key,
                WalletKeys(account["apiKey"], account["apiSecret"]),
                account["id"],
                client,
                transport,
            )
    finally:
        await gateway.stop()
        await exchange.stop()


def recorder(service: ExchangeService) -> dict[str, list[tuple[int, int]]]:
    """Every tick the exchange replays from now on, per symbol: (simulated ms, price units)."""
    seen: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def listen(symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
        seen[symbol].append((ts_ms, price))

    service.simulator.add_listener(listen)
    return seen


async def eventually(condition: Any, seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


def market_buy(symbol: str, quantity: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "side": "buy",
        "type": "market",
        "quantity": Decimal(quantity),
        "clientOrderId": uuid.uuid4().hex,
    }


# ------------------------------------------------------------------------------------ unary skills


async def test_listings_and_portfolio_come_from_the_exchange_the_link_discovers_with_the_callers_key(
    tmp_path: Path,
) -> None:
    async with network(tmp_path) as net:
        link = net.link()
        assert await link.exchange_id() == net.agent_id
        listings = await link.listings()
        assert [x.symbol for x in listings] == list(net.service.simulator.symbols)
        for listing in listings:
            assert listing.price == net.service.simulator.price(listing.symbol) * UNIT
            assert listing.token_address.startswith("paper:") and listing.quote == "USD"
        portfolio = await link.portfolio(net.keys)
        assert Decimal(str(portfolio["cash"])) == Decimal(100_000)
        assert "secret" not in repr(net.keys) and net.keys.api_secret not in repr(net.keys)
        # The gateway's key and the wallet's signature are both checked: errors, not outcomes.
        stranger = ExchangeLink(net.client, net.gateway_url, lambda: "nex_not-a-key", exchange_agent_id="x")
        with pytest.raises(ExchangeUnavailable) as refused:
            await stranger.listings()
        assert refused.value.rpc_code == -32060 and not refused.value.retryable
        with pytest.raises(ExchangeRefused) as bad:
            await link.portfolio(WalletKeys(net.keys.api_key, "not the secret"))
        assert bad.value.code == "INVALID_SIGNATURE"


async def test_a_buy_is_accepted_with_its_fill_a_refusal_gives_its_code_a_lost_answer_is_retried(
    tmp_path: Path,
) -> None:
    async with network(tmp_path) as net:
        link = net.link(exchange_agent_id=net.agent_id)
        bought = await link.place_order(net.keys, market_buy("BTC", "0.01"))
        assert bought.accepted and bought.code is None, bought
        [order] = net.service.engine.orders(net.account_id)
        view = net.service.engine.order_view(order)
        assert (bought.order_id, bought.status) == (order.id, "closed")
        assert bought.filled == Decimal("0.01") == view["filled"]
        assert bought.average == view["average"] and bought.average is not None and bought.average > 0
        assert bought.cost == view["cost"] and bought.fee == view["fee"]["cost"] > 0
        portfolio = await link.portfolio(net.keys)
        assert [p["symbol"] for p in portfolio["positions"]] == ["BTC"]

        broke = await link.place_order(net.keys, market_buy("BTC", "4"))
        assert (broke.accepted, broke.code) == (False, "INSUFFICIENT_BALANCE"), broke
        assert broke.message and broke.filled == 0
        unknown = await link.place_order(net.keys, market_buy("NOPE", "1"))
        assert (unknown.accepted, unknown.code, unknown.order) == (False, "UNKNOWN_INSTRUMENT", None)
        # An answer lost on the way back: the retry, freshly signed, gets the same order.
        net.transport.armed = True
        again = await link.place_order(net.keys, market_buy("ETH", "0.5"))
        assert net.transport.lost == 1 and again.accepted, again
        placed = [o.id for o in net.service.engine.orders(net.account_id) if o.symbol == "ETH"]
        assert placed == [again.order_id]
        with pytest.raises(ValueError, match="clientOrderId"):
            await link.place_order(
                net.keys, {"symbol": "BTC", "side": "buy", "type": "market", "quantity": 1}
            )


# ------------------------------------------------------------------------------------ the stream


async def test_subscribe_yields_the_bar_closes_and_stopping_early_cancels_the_subscription(
    tmp_path: Path,
) -> None:
    async with network(tmp_path) as net:
        link = net.link()
        seen = recorder(net.service)
        closes: list[tuple[str, Decimal]] = []

        def on_close(symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
            if phase == 3:
                closes.append((symbol, price * UNIT))

        net.service.simulator.add_listener(on_close)

        async def advance() -> None:
            net.service.simulator.advance(3)

        events: list[dict[str, Any]] = []
        async with asyncio.timeout(10), aclosing(link.subscribe(net.keys, on_open=advance)) as updates:
            async for event in updates:
                events.append(event)
                if len(events) == 3:
                    break
        assert [e["type"] for e in events] == ["price"] * 3
        assert [(e["symbol"], Decimal(str(e["price"]))) for e in events] == closes
        assert all(e["timestamp"] in {ts for ts, _ in seen[e["symbol"]]} for e in events)
        await eventually(lambda: net.hub.count == 0)


# ------------------------------------------------------------------------------------ the price feed


async def test_the_price_feed_reconnects_after_a_drop_and_catches_up_on_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exchange drops a subscriber that falls a queue behind: with a queue of 4, 5 bar closes at once
    drop the feed; more bars close while it backs off; once subscribed again it gets one catch-up tick
    per instrument covering every price of the gap, then live ticks again."""
    monkeypatch.setattr(skills_module, "QUEUE_SIZE", 4)
    async with network(tmp_path) as net:
        simulator = net.service.simulator
        seen = recorder(net.service)
        delivered: asyncio.Queue[list[Tick]] = asyncio.Queue()
        pauses: list[float] = []

        async def on_ticks(ticks: list[Tick]) -> None:
            await delivered.put(ticks)

        async def sleep(seconds: float) -> None:  # the backoff, while disconnected: the market moves on
            pauses.append(seconds)
            assert net.hub.count == 0
            simulator.advance(12)

        feed = PriceFeed(net.link(), lambda: net.keys, on_ticks, sleep=sleep)
        stop = asyncio.Event()
        running = asyncio.create_task(feed.run(stop))
        try:
            async with asyncio.timeout(10):
                await eventually(lambda: feed.connected)
                simulator.advance(1)
                [first] = await delivered.get()
                assert not first.catch_up and first.price == simulator.price(first.symbol) * UNIT
                simulator.advance(5)  # at once: the fifth close finds the queue full
                live = [(await delivered.get())[0] for _ in range(4)]
                assert not any(t.catch_up for t in live)
                since = max(t.timestamp_ms for t in [first, *live])
                catch_up = await delivered.get()
                assert pauses == [0.5] and feed.reconnects == 1
                assert {t.symbol for t in catch_up} == set(simulator.symbols)
                for tick in catch_up:
                    gap = [p for ts, p in seen[tick.symbol] if ts >= since]
                    assert tick.catch_up and tick.timestamp_ms == simulator.clock.now_ms()
                    assert tick.price == simulator.price(tick.symbol) * UNIT
                    assert (tick.low, tick.high) == (min(gap) * UNIT, max(gap) * UNIT), tick.symbol
                assert feed.last_tick_ms == simulator.clock.now_ms()
                await eventually(lambda: feed.connected and net.hub.count == 1)
                simulator.advance(1)
                [again] = await delivered.get()
                assert not again.catch_up and again.timestamp_ms > since
                assert feed.last_tick_ms == again.timestamp_ms
        finally:
            stop.set()
            await running
        assert not feed.connected
        await eventually(lambda: net.hub.count == 0)


async def test_the_price_feed_waits_for_keys_with_backoff_and_stops_when_told() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(500)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        link = ExchangeLink(client, "http://gw.test", lambda: None, exchange_agent_id="ex")
        stop = asyncio.Event()
        pauses: list[float] = []

        async def sleep(seconds: float) -> None:
            pauses.append(seconds)
            if len(pauses) == 6:
                stop.set()

        async def on_ticks(ticks: list[Tick]) -> None:
            raise AssertionError("no ticks without keys")

        await asyncio.wait_for(PriceFeed(link, lambda: None, on_ticks, sleep=sleep).run(stop), 5)
        assert pauses == [0.5, 1, 2, 5, 5, 5] and calls == []


# ------------------------------------------------------------------------------------ odd answers


def served(*answers: httpx.Response) -> httpx.AsyncClient:
    queue = list(answers)
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: queue.pop(0)))


def sse(*lines: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(lines))


async def test_answers_of_the_wrong_shape_or_size_are_exchange_unavailable() -> None:
    keys = WalletKeys("nx_test_k", "s")
    async with served(
        httpx.Response(200, json={"data": [{"id": "a", "skills": [{"id": "place-order"}]}]})
    ) as c:
        with pytest.raises(ExchangeUnavailable, match="no agent"):
            await ExchangeLink(c, "http://gw.test", lambda: None).exchange_id()
    async with served(httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {"message": {}}})) as c:
        with pytest.raises(ExchangeUnavailable, match="did not answer a task"):
            await ExchangeLink(c, "http://gw.test", lambda: None, exchange_agent_id="ex").listings()
    working = {"result": {"task": {"id": "t1", "status": {"state": "TASK_STATE_WORKING"}}}}
    huge = b"data: " + b"x" * (1 << 20) + b"\n\n"
    cancel = httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {"id": "t1"}})
    async with served(sse(b"data: ", httpx.Response(200, json=working).content, b"\n\n", huge), cancel) as c:
        link = ExchangeLink(c, "http://gw.test", lambda: None, exchange_agent_id="ex")
        with pytest.raises(ExchangeUnavailable, match="over 1048576 bytes"):
            async with aclosing(link.subscribe(keys)) as updates:
                async for _ in updates:
                    pass
    dropped = sse(b": ping\n\n", b"data: ", httpx.Response(200, json=working).content, b"\n\n")
    async with served(dropped, httpx.Response(503)) as c:  # the cancel that follows fails too: no matter
        link = ExchangeLink(c, "http://gw.test", lambda: None, exchange_agent_id="ex")
        with pytest.raises(ExchangeUnavailable, match="dropped"):
            async with aclosing(link.subscribe(keys)) as updates:
                async for _ in updates:
                    pass


def test_an_order_is_sent_as_exact_json_and_outcomes_read_the_ccxt_view() -> None:
    text = order_json({"symbol": "BTC", "quantity": Decimal("1E-2"), "price": None, "clientOrderId": "c1"})
    assert text == '{"symbol":"BTC","quantity":0.01,"price":null,"clientOrderId":"c1"}'
    view = {"orderId": "ord_1", "status": "closed", "filled": 0.01, "average": 30000.1, "cost": 300.001}
    outcome = OrderOutcome(True, None, None, {**view, "fee": {"cost": 0.3, "currency": "USD"}})
    assert (outcome.filled, outcome.average, outcome.cost, outcome.fee) == (
        Decimal("0.01"),
        Decimal("30000.1"),
        Decimal("300.001"),
        Decimal("0.3"),
    )
    assert (outcome.order_id, outcome.status) == ("ord_1", "closed")
    refused = OrderOutcome(False, "NO_PRICE", "no price yet", None)
    assert (refused.filled, refused.average, refused.fee, refused.order_id) == (
        Decimal(0),
        None,
        Decimal(0),
        None,
    )
