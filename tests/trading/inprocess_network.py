"""The whole trading network in the test's event loop, with no TCP port.

The same network as ``tests/trading/engine/network.py`` (a gateway; the paper exchange, registered at it
by its operator by card URL; the trading engine and the signal agent, each registering itself in its
lifespan with its owner's ``nex_`` key), but every app is an ASGI app served in process, its lifespan
run by asgi-lifespan's manager:

- Every HTTP call *to* an app goes through :class:`StreamingTransport`, an httpx transport that runs the
  app in a task of its own and hands the response body over chunk by chunk as the app sends it. So the
  SSE streams stream as over a socket: the exchange's ``order-updates`` subscription, which the engine's
  price feed and the signal agent follow through the gateway, and the gateway's relay of it.
  (httpx's own ``ASGITransport`` waits for the whole body, which a subscription never ends.)
- The gateway's unary calls to the agents take its default client (LeanHttp) over socket pairs served
  by uvicorn's HTTP/1.1 protocol (:meth:`Hosts.open_connection`), as on a real connection.
- Each host name has an address of its own in TEST-NET-3 (203.0.113.0/24, which routes nowhere),
  allowlisted in every app's settings, so the SSRF guards of the gateway and of the agents' kit apps
  resolve, vet and pin each call as they would a real agent's (the transports route on the Host header).

The exchange's replay is the simulated clock: it is stepped by the test (``paced=False``,
``market.simulator.advance``). The skills' prices are set by the agents' owners before any call, as the
gateway caches an agent's routing for a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Scope
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from a2a_gateway.app import create_gateway_app
from a2a_gateway.outbound.lean_http import Connection, LeanHttp
from a2a_gateway.settings import Settings
from agents_examples.trading.engine.agent import create_engine_app, deliver, feed_keys
from agents_examples.trading.engine.exchange_link import ExchangeLink, PriceFeed
from agents_examples.trading.engine.sandbox import SandboxAccounts
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.store import EngineStore
from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore
from agents_examples.trading.gateway_client import GatewayClient
from agents_examples.trading.signals.agent import FeedAccount, Owner, create_signals_app
from agents_examples.trading.signals.service import INTAKE_TIMEOUT_SECONDS, EngineIntake, SignalService
from agents_examples.trading.signals.strategy import Strategy, StrategyConfig
from tests.conftest import make_settings
from tests.factories import host_of
from tests.trading.engine.network import login, user_key

TEST_NET = "203.0.113.0/24"
GATEWAY, EXCHANGE, ENGINE, SIGNALS = "gateway.test", "exchange.test", "engine.test", "signals.test"
DEADLINE_SECONDS = 10.0
CLOSE_SECONDS = 2.0  # how long a closed response's app may take to notice its client left


def url(host: str) -> str:
    """The base URL of an in-process host."""
    return f"http://{host}"


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, seconds: float = DEADLINE_SECONDS
) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds} s waiting for {what}") from None


# ---------------------------------------------------------------------------------- the transports


class _Exchange:
    """One request to an ASGI app running in a task of its own, its response handed over as it comes."""

    def __init__(self, app: ASGIApp, scope: Scope, body: bytes) -> None:
        self._body: bytes | None = body
        self._gone = asyncio.Event()  # the client closed the response
        self._start: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.failure: Exception | None = None
        self.task = asyncio.create_task(self._run(app, scope))

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._gone.is_set():
            return  # as a server does once its client has gone
        if message["type"] == "http.response.start":
            if not self._start.done():
                self._start.set_result((message["status"], list(message.get("headers", []))))
        elif message["type"] == "http.response.body":
            chunk = bytes(message.get("body", b""))
            if chunk:
                self.chunks.put_nowait(chunk)
            if not message.get("more_body", False):
                self.chunks.put_nowait(None)

    async def _run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self._receive, self._send)
        except Exception as error:  # handed to the caller: before the response as it, after as a read error
            self.failure = error
        finally:
            if not self._start.done():
                self._start.set_exception(self.failure or RuntimeError("the app answered no response"))
            self.chunks.put_nowait(None)

    async def response(self) -> httpx.Response:
        try:
            status, headers = await self._start
        except BaseException:
            await self.aclose()
            raise
        return httpx.Response(
            status, headers=headers, stream=_Body(self), extensions={"http_version": b"HTTP/1.1"}
        )

    async def aclose(self) -> None:
        """The client is gone: tell the app, give it a moment to end, then cancel it."""
        self._gone.set()
        if not self.task.done():
            await asyncio.wait({self.task}, timeout=CLOSE_SECONDS)
        if not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task})


class _Body(httpx.AsyncByteStream):
    def __init__(self, exchange: _Exchange) -> None:
        self._exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._exchange.chunks.get()) is not None:
            yield chunk
        if self._exchange.failure is not None:
            raise httpx.ReadError(f"the app failed mid-response: {self._exchange.failure!r}")

    async def aclose(self) -> None:
        await self._exchange.aclose()


class StreamingTransport(httpx.AsyncBaseTransport):
    """An httpx transport to the in-process app the request's Host header names (see the module doc);
    an unknown host refuses the connection."""

    def __init__(self, app_of: Callable[[str], ASGIApp | None]) -> None:
        self._app_of = app_of
        self._running: set[_Exchange] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = host_of(request)
        app = self._app_of(host)
        if app is None:
            raise httpx.ConnectError(f"nothing listens at {host}", request=request)
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (host, request.url.port or 80),
            "client": ("203.0.113.250", 50000),
            "root_path": "",
        }
        exchange = _Exchange(app, scope, await request.aread())
        self._running.add(exchange)
        exchange.task.add_done_callback(lambda _: self._running.discard(exchange))
        return await exchange.response()

    async def aclose(self) -> None:
        """Nothing: the transport is shared by every client of the network (:meth:`end`)."""

    async def end(self) -> None:
        """End the apps' requests still running (their clients have all gone by now)."""
        for exchange in list(self._running):
            await exchange.aclose()


class Hosts:
    """The in-process hosts by name, each with its own address (module doc)."""

    def __init__(self) -> None:
        self._apps: dict[str, ASGIApp] = {}
        self._addresses: dict[str, str] = {}
        self._state = ServerState()
        self._configs: dict[str, uvicorn.Config] = {}
        self._writers: list[asyncio.StreamWriter] = []
        self.transport = StreamingTransport(self._apps.get)
        self.connections: dict[str, int] = {}  # socket-pair connections opened to each host

    def add(self, name: str, app: ASGIApp) -> None:
        self._addresses[name] = f"203.0.113.{10 + len(self._apps)}"
        self._apps[name] = app

    async def resolver(self, host: str, port: int) -> list[str]:
        """The SSRF guards' resolver: each host's one address; other names do not resolve."""
        return [self._addresses[host]] if host in self._addresses else []

    async def open_connection(
        self, host: str, port: int, *, limit: int, ssl: Any = None, server_hostname: str | None = None
    ) -> Connection:
        """The unary client's opener: a socket pair, its far end served by uvicorn's HTTP/1.1 protocol."""
        name = next((n for n, a in self._addresses.items() if a == host), None)
        if name is None:
            raise ConnectionRefusedError(f"nothing listens on {host}:{port}")
        if ssl is not None:
            raise OSError("the in-process hosts speak plain HTTP")
        config = self._configs.get(name)
        if config is None:
            config = uvicorn.Config(self._apps[name], lifespan="off", log_config=None, access_log=False)
            config.load()
            self._configs[name] = config
        ours, theirs = socket.socketpair()
        self.connections[name] = self.connections.get(name, 0) + 1
        await asyncio.get_running_loop().connect_accepted_socket(
            lambda: H11Protocol(config=config, server_state=self._state, app_state={}), ours
        )
        reader, writer = await asyncio.open_connection(sock=theirs, limit=limit)
        self._writers.append(writer)
        return reader, writer

    async def aclose(self) -> None:
        """Close the served connections (as uvicorn does at shutdown) and the requests still running."""
        for protocol in list(self._state.connections):
            protocol.shutdown()
        if self._state.tasks:
            await asyncio.wait(list(self._state.tasks), timeout=5)
        for writer in self._writers:
            writer.close()
        await self.transport.end()


# ---------------------------------------------------------------------------------- the network


@dataclass(frozen=True)
class User:
    """A gateway user of the network: a login session, a ``nex_`` key and the user id."""

    email: str
    token: str
    key: str
    id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class InProcessNetwork:
    """The running network. ``gw`` and ``engine_api`` are the test's clients of the gateway and of the
    engine's REST API; the services are the agents' own objects, for reading their state."""

    hosts: Hosts
    gateway_app: Starlette
    gw: httpx.AsyncClient
    engine_api: httpx.AsyncClient
    market: ExchangeService
    engine: EngineService
    engine_feed: PriceFeed
    signals: SignalService
    signals_feed: PriceFeed
    operator: User  # owns the exchange
    trader: User  # owns the engine and its trading agents
    analyst: User  # owns the signal agent
    exchange_id: str
    engine_id: str
    signals_id: str

    async def trading_agent(self, config: dict[str, Any], starting: float = 1000) -> dict[str, Any]:
        """A new trading agent of the trader with ``config`` and a sandbox wallet funded with ``starting``."""
        auth = self.trader.auth
        created = await self.engine_api.post("/api/v1/agents", json={"name": "follower"}, headers=auth)
        assert created.status_code == 201, created.text
        agent: dict[str, Any] = created.json()
        put = await self.engine_api.put(f"/api/v1/agents/{agent['id']}/config", json=config, headers=auth)
        assert put.status_code == 200, put.text
        wallet = await self.engine_api.post("/api/v1/wallets", json={"label": "sandbox"}, headers=auth)
        assert wallet.status_code == 201, wallet.text
        assigned = await self.engine_api.post(
            "/api/v1/wallets/assign",
            json={
                "agentId": agent["id"],
                "walletAddress": wallet.json()["walletAddress"],
                "startingBalance": starting,
            },
            headers=auth,
        )
        assert assigned.status_code == 200, assigned.text
        return agent

    def token_of(self, symbol: str) -> str:
        return next(x.token_address for x in self.engine.trader.listings.values() if x.symbol == symbol)


async def _user(gw: httpx.AsyncClient, email: str) -> User:
    token = await login(gw, email)
    key = await user_key(gw, token)
    me = await gw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    return User(email, token, key, me.json()["data"]["id"])


async def _registered(gw: httpx.AsyncClient, owner: User, name: str) -> str:
    """The id of ``owner``'s agent ``name`` once its process registered it at the gateway."""
    found: list[str] = []

    async def listed() -> bool:
        answer = await gw.get("/api/v1/agents", headers=owner.auth)
        found[:] = [a["id"] for a in answer.json()["data"] if a["name"] == name]
        return bool(found)

    await eventually(listed, f"{name} to register at the gateway")
    return found[0]


async def price_skills(gw: httpx.AsyncClient, owner: User, agent_id: str, prices: Mapping[str, int]) -> None:
    """Set each skill's price (``prices``, the others free) as the agent's owner, by PATCH."""
    agent = (await gw.get(f"/api/v1/agents/{agent_id}", headers=owner.auth)).json()["data"]
    assert set(prices) <= {s["id"] for s in agent["skills"]}, agent["skills"]
    skills = [{**s, "price": prices.get(s["id"], 0)} for s in agent["skills"]]
    patched = await gw.patch(f"/api/v1/agents/{agent_id}", json={"skills": skills}, headers=owner.auth)
    assert patched.status_code == 200, patched.text
    shown = {s["id"]: s["price"] for s in patched.json()["data"]["skills"]}
    assert shown == {s["id"]: prices.get(s["id"], 0) for s in agent["skills"]}


@contextlib.asynccontextmanager
async def in_process_network(
    tmp_path: Path,
    *,
    seed: int,
    strategy: StrategyConfig,
    exchange_prices: Mapping[str, int],
    engine_prices: Mapping[str, int],
    fee_bps: int,
    grant: int,
    warm_up_bars: int = 30,
) -> AsyncIterator[InProcessNetwork]:
    """The network (module doc) on synthetic bars from ``seed``, the replay stepped ``warm_up_bars``
    before the agents start. The trader and the analyst are granted ``grant`` credits each; the gateway
    takes ``fee_bps`` of every captured price."""
    hosts = Hosts()

    def settings(name: str, **extra: Any) -> Settings:
        return make_settings(tmp_path / name, public_url=url(name), outbound_allowlist=[TEST_NET], **extra)

    seams: dict[str, Any] = {"outbound_transport": hosts.transport, "resolver": hosts.resolver}
    gateway_app = create_gateway_app(
        settings(GATEWAY, platform_fee_bps=fee_bps),
        unary_client=functools.partial(LeanHttp, opener=hosts.open_connection),
        **seams,
    )
    hosts.add(GATEWAY, gateway_app)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(hosts.aclose)  # after every app and client has closed
        await stack.enter_async_context(LifespanManager(gateway_app))

        def client(host: str) -> httpx.AsyncClient:
            made = httpx.AsyncClient(transport=hosts.transport, base_url=url(host), timeout=15)
            stack.push_async_callback(made.aclose)
            return made

        gw = client(GATEWAY)
        operator = await _user(gw, "exchange-operator@example.com")
        trader = await _user(gw, "trader@example.com")
        analyst = await _user(gw, "analyst@example.com")
        for payer in (trader, analyst):
            await gateway_app.state.billing.grant(payer.id, grant, "end-to-end test")

        # The exchange, registered by its operator by card URL and priced before anyone calls it.
        market = ExchangeService(
            AccountStore(tmp_path / "exchange"), load_market_data(use_real=False, seed=seed)
        )
        market.simulator.advance(warm_up_bars)
        exchange_app = create_exchange_app(market, settings(EXCHANGE), paced=False, **seams)
        hosts.add(EXCHANGE, exchange_app)
        await stack.enter_async_context(LifespanManager(exchange_app))
        registered = await gw.post("/api/v1/agents", json={"cardUrl": url(EXCHANGE)}, headers=operator.auth)
        assert registered.status_code == 201, registered.text
        exchange_id: str = registered.json()["data"]["id"]
        await price_skills(gw, operator, exchange_id, exchange_prices)

        # The engine: registers itself with the trader's key, trades through the gateway with it.
        outbound = client(GATEWAY)  # the agents' client: absolute URLs, any host
        link = ExchangeLink(outbound, url(GATEWAY), lambda: trader.key, exchange_agent_id=exchange_id)
        engine = EngineService(
            EngineStore(tmp_path / "engine"), link, sandbox=SandboxAccounts(outbound, url(EXCHANGE))
        )
        engine_feed = PriceFeed(
            link, feed_keys(engine), lambda ticks: deliver(engine, ticks), backoff=(0.05,)
        )
        engine_app = create_engine_app(
            engine,
            settings(ENGINE, gateway_url=url(GATEWAY), gateway_key=trader.key),
            feed=engine_feed,
            forwarder_client=outbound,
            **seams,
        )
        hosts.add(ENGINE, engine_app)
        await stack.enter_async_context(LifespanManager(engine_app))
        engine_id = await _registered(gw, trader, "Trading Engine")
        await price_skills(gw, trader, engine_id, engine_prices)

        async def listed() -> bool:
            return bool(engine.trader.listings)

        await eventually(listed, "the engine to learn the exchange's listings")

        # The signal agent: the analyst's, following the exchange's prices with a sandbox account.
        intake = EngineIntake(
            GatewayClient(outbound, url(GATEWAY), lambda: analyst.key, timeout=INTAKE_TIMEOUT_SECONDS)
        )
        signals = SignalService(Strategy(strategy), intake)
        account = FeedAccount(opener=SandboxAccounts(outbound, url(EXCHANGE)))
        signals_link = ExchangeLink(
            outbound, url(GATEWAY), lambda: analyst.key, exchange_agent_id=exchange_id
        )
        signals_feed = PriceFeed(signals_link, account.keys, signals.on_ticks, backoff=(0.05,))
        signals_app = create_signals_app(
            signals,
            settings(SIGNALS, gateway_url=url(GATEWAY), gateway_key=analyst.key),
            owner=Owner(GatewayClient(outbound, url(GATEWAY), lambda: analyst.key)),
            feed=signals_feed,
            account=account,
            **seams,
        )
        hosts.add(SIGNALS, signals_app)
        await stack.enter_async_context(LifespanManager(signals_app))
        signals_id = await _registered(gw, analyst, "Signal Agent")

        yield InProcessNetwork(
            hosts,
            gateway_app,
            gw,
            client(ENGINE),
            market,
            engine,
            engine_feed,
            signals,
            signals_feed,
            operator,
            trader,
            analyst,
            exchange_id,
            engine_id,
            signals_id,
        )
