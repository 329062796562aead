"""The engine's Nexgent WebSocket on a real server, against a real gateway, with real clients.

The gateway runs on a loopback port and verifies the credentials (its access tokens through its JWKS,
``nex_`` keys through its introspection route); the engine's route runs on another, over a fake
directory of trading agents; the clients are the ``websockets`` package and the seed's own Python
client, unchanged.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from a2a_gateway.app import GatewayAuth
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.auth.tokens import AccessTokens
from agents_examples.trading.engine.events import PositionEvents, envelope
from agents_examples.trading.engine.ws import positions_socket
from tests.conftest import LiveServer, free_port, make_settings
from tests.fakes import MemorySigningKeys
from tests.trading.engine.seed_ws_client import NexgentWebSocket

PASSWORD = "long enough password"
MINE = "agent-ann"
THEIRS = "agent-bob"
SOL = "So11111111111111111111111111111111111111112"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
POSITIONS = [
    {
        "id": "pos-1",
        "agentId": MINE,
        "tokenAddress": SOL,
        "tokenSymbol": "SOL",
        "purchasePrice": 0.5,
        "purchaseAmount": 10.0,
        "currentPrice": 0.55,
        "currentPriceUsd": 82.5,
        "positionValueSol": 5.5,
        "profitLossSol": 0.5,
        "profitLossPercent": 10.0,
    }
]
CREATED = {
    "id": "pos-2",
    "agentId": MINE,
    "tokenAddress": BONK,
    "tokenSymbol": "BONK",
    "purchasePrice": 0.000001,
    "purchaseAmount": 1_000_000.0,
    "currentPrice": 0.000001,
    "currentPriceUsd": 0.00015,
    "positionValueSol": 1.0,
    "profitLossSol": 0.0,
    "profitLossPercent": -2.5,
}
WAIT = 5.0


@dataclass
class Directory:
    """Two trading agents, one the test user's, one someone else's; a hook runs mid-snapshot."""

    owner: str
    during_snapshot: Callable[[], None] | None = None
    reads: list[str] = field(default_factory=list)

    async def owner_of(self, agent_id: str) -> str | None:
        return {MINE: self.owner, THEIRS: "user-someone-else"}.get(agent_id)

    async def initial_positions(self, agent_id: str) -> list[dict[str, Any]]:
        self.reads.append(agent_id)
        if self.during_snapshot is not None:
            self.during_snapshot()
        return copy.deepcopy(POSITIONS)


@dataclass
class Gateway:
    url: str
    user_id: str
    token: str
    user_key: str
    auth: GatewayAuth


@dataclass
class Engine:
    url: str
    hub: PositionEvents
    directory: Directory

    def feed(self, token: str, agent_id: str | None = MINE) -> str:
        query = f"token={token}" + (f"&agentId={agent_id}" if agent_id is not None else "")
        return self.url.replace("http://", "ws://") + "/ws?" + query


@pytest.fixture
async def gateway(tmp_path: Path, live_server: Callable[..., Any]) -> AsyncIterator[Gateway]:
    """A real gateway on a loopback port: a user with a token and a nex_ key, and the engine's agent key."""
    server: LiveServer = await live_server()
    async with httpx.AsyncClient(base_url=server.url) as gw:
        credentials = {"email": "ann@example.com", "password": PASSWORD}
        assert (await gw.post("/api/v1/auth/register", json=credentials)).status_code < 300
        token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
        bearer = {"Authorization": f"Bearer {token}"}
        user_id = (await gw.get("/api/v1/auth/me", headers=bearer)).json()["data"]["id"]
        user_key = (
            await gw.post("/api/v1/api-keys", json={"name": "k", "scopes": ["agents:read"]}, headers=bearer)
        ).json()["data"]["key"]
        spec = {
            "name": "Trading engine",
            "endpoint": "http://127.0.0.1:9/a2a",
            "skills": [{"id": "trade", "name": "Trade", "description": "d"}],
        }
        agent = (await gw.post("/api/v1/agents", json=spec, headers=bearer)).json()["data"]
        agent_key = (
            await gw.post(f"/api/v1/agents/{agent['id']}/api-keys", json={"name": "engine"}, headers=bearer)
        ).json()["data"]["key"]
    settings = make_settings(
        tmp_path / "engine", gateway_url=server.url, agent_id=agent["id"], agent_key=agent_key
    )
    async with GatewayAuth.from_settings(settings) as auth:
        yield Gateway(server.url, user_id, token, user_key, auth)


@pytest.fixture
async def engine(gateway: Gateway) -> AsyncIterator[Callable[..., Any]]:
    """Factory: the engine's route on its own loopback server; all are stopped afterwards."""
    servers: list[LiveServer] = []
    errors = Errors()

    async def start(queue_size: int = 256, **options: Any) -> Engine:
        hub = PositionEvents(queue_size)
        directory = Directory(gateway.user_id)
        app = Starlette(routes=[positions_socket(gateway.auth, directory, hub, **options)])
        server = LiveServer(app, free_port())  # configures uvicorn's loggers: watch them from now on
        logging.getLogger("uvicorn.error").addHandler(errors)
        await server.start()
        servers.append(server)
        return Engine(server.url, hub, directory)

    try:
        yield start
        for server in reversed(servers):
            await server.stop()
    finally:
        logging.getLogger("uvicorn.error").removeHandler(errors)
    assert errors.records == [], "the engine's server logged errors (a client leaving must not)"


class Errors(logging.Handler):
    """The error records of the engine's server (an exception out of the route is logged there)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int, str]:
    """The messages left before the server closed, its close code and reason."""
    messages = []
    try:
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return messages, closed.rcvd.code, closed.rcvd.reason


async def refused(url: str) -> tuple[str, int, str]:
    """Open ``url``, expect one error message then a close: (error message, code, reason)."""
    async with connect(url) as ws:
        messages, code, reason = await until_closed(ws)
    assert [m["type"] for m in messages] == ["error"]
    return messages[0]["data"]["message"], code, reason


async def opened(ws: ClientConnection) -> list[dict[str, Any]]:
    """The first two messages: connected, initial_data."""
    connected = await next_message(ws)
    assert connected["type"] == "connected", connected
    initial = await next_message(ws)
    assert initial["type"] == "initial_data", initial
    return [connected, initial]


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


# --- refusals ------------------------------------------------------------------------------------------


async def test_a_bad_or_missing_token_gets_an_error_then_1008(engine: Callable[..., Any]) -> None:
    server: Engine = await engine()
    for token in ("not-a-token", "", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"):
        message, code, reason = await refused(server.feed(token))
        assert code == 1008
        assert reason and len(reason.encode()) <= 123
        if token:
            assert token not in reason and token not in message
    assert server.directory.reads == [] and server.hub.count == 0


async def test_a_token_signed_with_another_key_is_refused(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine()
    forger = AccessTokens(KeyRing(MemorySigningKeys()), issuer=gateway.url)
    forged, _ = await forger.issue(gateway.user_id, ["agents:read"])
    message, code, reason = await refused(server.feed(forged))
    assert code == 1008 and reason
    assert forged not in message and forged not in reason


async def test_an_agent_id_is_required(gateway: Gateway, engine: Callable[..., Any]) -> None:
    server: Engine = await engine()
    for agent_id in (None, "", "%20%20"):
        message, code, reason = await refused(server.feed(gateway.token, agent_id))
        assert code == 1008
        assert "agentId" in message and "agentId" in reason


async def test_another_users_agent_is_not_found_like_one_that_does_not_exist(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine()
    theirs = await refused(server.feed(gateway.token, THEIRS))
    missing = await refused(server.feed(gateway.token, "agent-nobody"))
    assert theirs == missing == ("agent not found", 1008, "agent not found")
    assert server.directory.reads == []


# --- the feed ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", ["token", "user_key"])
async def test_the_owner_gets_connected_then_the_initial_positions(
    gateway: Gateway, engine: Callable[..., Any], credential: str
) -> None:
    server: Engine = await engine()
    async with connect(server.feed(getattr(gateway, credential))) as ws:
        connected, initial = await opened(ws)
        assert connected["data"]["agentId"] == MINE
        assert connected["data"]["timestamp"] == connected["timestamp"]
        assert connected["timestamp"].endswith("Z")
        assert initial["data"]["positions"] == POSITIONS
        assert initial["data"]["timestamp"].endswith("Z")
        assert server.hub.count == 1
    await eventually(lambda: server.hub.count == 0)  # the follower left with the client


async def test_published_events_arrive_as_published_and_in_order(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine()
    async with connect(server.feed(gateway.token)) as ws:
        await opened(ws)  # one at a time: see test_concurrent_first_handshakes_are_all_verified
        other = await connect(server.feed(gateway.token))
        await opened(other)
        created = envelope("position_update", {"eventType": "position_created", "position": CREATED})
        prices = envelope(
            "price_update_batch",
            {"updates": [{"tokenAddress": SOL, "price": 0.6, "priceUsd": 90.0}]},
        )
        closed = envelope("position_update", {"eventType": "position_closed", "positionId": "pos-2"})
        server.hub.publish(THEIRS, envelope("price_update_batch", {"updates": []}))  # not this agent's
        for message in (created, prices, closed):
            server.hub.publish(MINE, message)
        for client in (ws, other):
            assert [await next_message(client) for _ in range(3)] == [created, prices, closed]
        await other.close()


async def test_a_client_vanishing_mid_stream_leaves_quietly(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine()
    async with connect(server.feed(gateway.token)) as ws:
        await opened(ws)
        ws.transport.abort()  # no closing handshake: the TCP connection just goes
        for n in range(50):
            server.hub.publish(MINE, envelope("price_update_batch", {"updates": [], "n": n}))
        await eventually(lambda: server.hub.count == 0)
    # and the engine's fixture checks that its server logged no error about it


async def test_events_published_while_the_snapshot_is_read_are_not_lost(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine()
    again = envelope("position_update", {"eventType": "position_created", "position": POSITIONS[0]})
    created = envelope("position_update", {"eventType": "position_created", "position": CREATED})
    prices = envelope(
        "price_update_batch", {"updates": [{"tokenAddress": BONK, "price": 2e-6, "priceUsd": 3e-4}]}
    )

    def publish_meanwhile() -> None:
        for message in (again, created, prices):
            server.hub.publish(MINE, message)

    server.directory.during_snapshot = publish_meanwhile
    async with connect(server.feed(gateway.token)) as ws:
        await opened(ws)
        # The one the snapshot already holds is not sent twice; the others follow it in order.
        assert [await next_message(ws), await next_message(ws)] == [created, prices]
        await ws.send(json.dumps({"type": "ping"}))
        assert (await next_message(ws))["type"] == "pong"


async def test_a_follower_too_slow_for_the_hub_is_closed_to_reconnect(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine(queue_size=2)
    async with connect(server.feed(gateway.token)) as ws:
        await opened(ws)
        for n in range(5):  # at once: the socket's sender gets no turn before the queue overflows
            server.hub.publish(MINE, envelope("price_update_batch", {"updates": [], "n": n}))
        _, code, reason = await until_closed(ws)
    assert (code, reason) == (1013, "too slow; reconnect")
    assert server.hub.count == 0


async def test_the_hub_closing_ends_the_feed_as_going_away(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine()
    async with connect(server.feed(gateway.token)) as ws:
        await opened(ws)
        server.hub.close_all()
        _, code, _ = await until_closed(ws)
    assert code == 1001


# --- keepalive and client messages ---------------------------------------------------------------------


async def test_server_pings_answered_with_pong_keep_the_socket_open(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine(ping_seconds=0.05)
    async with connect(server.feed(gateway.token)) as ws:
        await opened(ws)
        for _ in range(8):  # four times the two intervals a silent client is given
            ping = await next_message(ws)
            assert ping["type"] == "ping" and ping["timestamp"].endswith("Z")
            await ws.send(json.dumps({"type": "pong", "timestamp": ping["timestamp"]}))
        assert ws.state is State.OPEN
        server.hub.publish(MINE, envelope("price_update_batch", {"updates": []}))
        while (message := await next_message(ws))["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
        assert message["type"] == "price_update_batch"


async def test_a_client_that_never_answers_is_closed_for_ping_timeout(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine(ping_seconds=0.05)
    async with connect(server.feed(gateway.token)) as ws:
        messages, code, reason = await until_closed(ws)
    assert [m["type"] for m in messages[:2]] == ["connected", "initial_data"]
    assert {m["type"] for m in messages[2:]} == {"ping"}
    assert (code, reason) == (1011, "ping timeout")
    await eventually(lambda: server.hub.count == 0)


async def test_a_client_ping_gets_pong_and_subscribe_gets_subscribed(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine()
    async with connect(server.feed(gateway.token)) as ws:
        await opened(ws)
        await ws.send(json.dumps({"type": "ping"}))
        pong = await next_message(ws)
        assert pong["type"] == "pong" and pong["timestamp"].endswith("Z")
        await ws.send(json.dumps({"type": "pong"}))  # noted, not answered
        await ws.send(json.dumps({"type": "subscribe", "data": {"agentId": MINE}}))
        subscribed = await next_message(ws)
        assert (subscribed["type"], subscribed["data"]) == ("subscribed", {"agentId": MINE})


async def test_a_bad_client_message_gets_an_error_and_the_socket_stays_open(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine()
    bad: list[str | bytes] = [
        "not json",
        "[1, 2]",
        json.dumps({"type": "dance"}),
        json.dumps({"kind": "ping"}),
        json.dumps({"type": "ping", "pad": "x" * 5000}),
        b'{"type": "ping"}',
    ]
    async with connect(server.feed(gateway.token)) as ws:
        await opened(ws)
        for message in bad:
            await ws.send(message)
            answer = await next_message(ws)
            assert answer["type"] == "error", (message, answer)
            assert answer["data"]["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert (await next_message(ws))["type"] == "pong"


async def test_past_max_connections_a_socket_is_told_to_try_again_later(
    gateway: Gateway, engine: Callable[..., Any]
) -> None:
    server: Engine = await engine(max_connections=2)
    async with connect(server.feed(gateway.token)) as first:
        await opened(first)
        second = await connect(server.feed(gateway.token))
        await opened(second)
        async with connect(server.feed(gateway.token)) as third:
            messages, code, reason = await until_closed(third)
        assert messages == [] and code == 1013 and reason
        await first.close()
        await eventually(lambda: server.hub.count == 1)  # counted out as its follower left
        async with connect(server.feed(gateway.token)) as fourth:
            await opened(fourth)
        await second.close()


# --- the seed's own client -----------------------------------------------------------------------------


class Recording(NexgentWebSocket):
    """The seed's client, unchanged, recording what it shows and counting the pings it answers."""

    def __init__(self, api_url: str, token: str, agent_id: str) -> None:
        super().__init__(api_url, token, agent_id)
        self.shown: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.pings = 0
        self.pinged = asyncio.Event()

    async def handle_message(self, message: dict[str, Any]) -> None:
        await super().handle_message(message)
        if message.get("type") == "ping":
            self.pings += 1
            if self.pings >= 6:
                self.pinged.set()

    async def on_positions_update(self, positions: list[dict[str, Any]]) -> None:
        await super().on_positions_update(positions)  # the seed's printout: "  SOL: 10.00%"
        self.shown.put_nowait(copy.deepcopy(positions))


async def test_the_seed_python_client_works_unchanged(
    gateway: Gateway, engine: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    server: Engine = await engine(ping_seconds=0.05)
    client = Recording(server.url, gateway.token, MINE)
    running = asyncio.create_task(client.connect())  # type: ignore[no-untyped-call]
    try:

        async def shown() -> list[dict[str, Any]]:
            return await asyncio.wait_for(client.shown.get(), WAIT)

        assert await shown() == POSITIONS
        assert client.is_connected
        server.hub.publish(
            MINE, envelope("position_update", {"eventType": "position_created", "position": CREATED})
        )
        assert [p["id"] for p in await shown()] == ["pos-1", "pos-2"]
        server.hub.publish(
            MINE,
            envelope(
                "price_update_batch",
                {"updates": [{"tokenAddress": SOL.upper(), "price": 0.6, "priceUsd": 90.0}]},
            ),
        )
        assert (await shown())[0] | {} == POSITIONS[0] | {"currentPrice": 0.6, "currentPriceUsd": 90.0}
        await asyncio.wait_for(client.pinged.wait(), WAIT)  # its pongs keep it connected
        updated = {"id": "pos-2", "profitLossPercent": 4.25, "tokenSymbol": "BONK", "tokenAddress": BONK}
        server.hub.publish(
            MINE, envelope("position_update", {"eventType": "position_updated", "position": updated})
        )
        assert (await shown())[1]["profitLossPercent"] == 4.25
        server.hub.publish(
            MINE, envelope("position_update", {"eventType": "position_closed", "positionId": "pos-2"})
        )
        assert [p["id"] for p in await shown()] == ["pos-1"]
        assert not running.done()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    printed = capsys.readouterr().out
    assert f"Connected to agent: {MINE}" in printed
    assert "Received 1 positions" in printed
    assert "  SOL: 10.00%" in printed and "  BONK: -2.50%" in printed and "  BONK: 4.25%" in printed
    assert "Server error" not in printed
