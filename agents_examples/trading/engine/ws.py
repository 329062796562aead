"""Nexgent's WebSocket, ``/ws?token=<credential>&agentId=<trading agent id>``: one agent's positions, live.

The handshake is accepted first, so a refusal can say why in Nexgent's envelope before the socket
closes: an ``error {message}`` message, then close code 1008 (policy violation) with a short reason that
never repeats the token. The credential is the gateway's (an access token or a ``nex_`` user key, read
from ``?token=`` by :class:`~a2a_gateway.app.GatewayAuth`); the agent must be the caller's own, and an
agent of someone else's is "agent not found", exactly like one that does not exist. Over
``max_connections`` open sockets a new one is closed with 1013 (try again later).

Once in, the client gets ``connected {agentId, timestamp}``, then ``initial_data {positions,
timestamp}``, then every message of the agent's :class:`~.events.PositionEvents` as it is published
(``position_update``, ``price_update_batch``, ...). The socket follows the hub *before* it reads the
positions, so nothing published in between is lost; a ``position_created`` that was queued meanwhile for
a position already in the snapshot is skipped (it would show twice).

Keepalive: every ``ping_seconds`` the server sends ``ping``, which the client answers with ``pong``; when
nothing at all has come from the client for two intervals the socket closes, 1011 "ping timeout".
The client may send ``ping`` (answered ``pong``), ``pong`` and ``subscribe`` (answered ``subscribed
{agentId}``); anything else, non-JSON or over 4 KiB is answered with ``error`` and the socket stays open.
A client too slow to take its messages is dropped by the hub and closed, 1013 "too slow; reconnect".

Sending costs one frame per client: each published message's JSON text is made once for all
(:func:`~.events.json_text`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Final, Protocol

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from a2a_gateway.app import GatewayAuth
from a2a_gateway.errors import Unauthenticated
from agents_examples.trading.engine.events import Follower, PositionEvents, envelope, json_text

MAX_CLIENT_MESSAGE: Final = 4096  # bytes of one client message
MAX_REASON: Final = 123  # bytes: the most a close frame's reason can hold
POLICY_VIOLATION: Final = 1008
TRY_AGAIN_LATER: Final = 1013
INTERNAL_ERROR: Final = 1011
GOING_AWAY: Final = 1001
NOT_FOUND: Final = "agent not found"


class PositionsDirectory(Protocol):
    """Where the socket learns who owns a trading agent and what it holds."""

    async def owner_of(self, agent_id: str) -> str | None:
        """The gateway user id owning the trading agent ``agent_id``; None when there is no such agent."""
        ...

    async def initial_positions(self, agent_id: str) -> list[dict[str, Any]]:
        """The agent's open positions, enriched and rendered as JSON values; each carries at least
        ``id``, ``tokenAddress``, ``tokenSymbol`` and a numeric ``profitLossPercent`` (Nexgent's
        clients read them unguarded)."""
        ...


def positions_socket(
    auth: GatewayAuth,
    directory: PositionsDirectory,
    hub: PositionEvents,
    *,
    ping_seconds: float = 30.0,
    max_connections: int = 500,
    path: str = "/ws",
) -> WebSocketRoute:
    """The WebSocket route at ``path`` serving ``hub``'s events to the owners of the agents."""
    if ping_seconds <= 0 or max_connections < 1:
        raise ValueError("ping_seconds must be positive and max_connections at least 1")
    feed = _Feed(auth, directory, hub, ping_seconds, max_connections)
    return WebSocketRoute(path, feed.serve, name="positions_socket")


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class _Feed:
    """The route's endpoint and what its sockets share: the open count."""

    def __init__(
        self,
        auth: GatewayAuth,
        directory: PositionsDirectory,
        hub: PositionEvents,
        ping_seconds: float,
        max_connections: int,
    ) -> None:
        self.auth = auth
        self.directory = directory
        self.hub = hub
        self.ping_seconds = ping_seconds
        self.max_connections = max_connections
        self.open = 0

    async def serve(self, websocket: WebSocket) -> None:
        """One socket, from handshake to close; a client that goes away just ends it."""
        if self.open >= self.max_connections:
            await websocket.accept()
            await websocket.close(TRY_AGAIN_LATER, "too many connections; try again later")
            return
        self.open += 1
        try:
            await self._serve(websocket)
        except WebSocketDisconnect:
            pass  # the client left while something was being sent: nothing more to do
        finally:
            self.open -= 1

    async def _serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            credential = await self.auth.credential(websocket)
        except Unauthenticated as refused:
            token = websocket.query_params.get("token", "")
            message = refused.message.replace(token, "<token>") if token else refused.message
            await _refuse(websocket, message)
            return
        agent_id = (websocket.query_params.get("agentId") or "").strip()
        if not agent_id:
            await _refuse(websocket, "agentId is required: /ws?token=...&agentId=<trading agent id>")
            return
        owner = await self.directory.owner_of(agent_id)
        if owner is None or owner != credential.caller.user:
            await _refuse(websocket, NOT_FOUND)
            return
        follower = self.hub.follow(agent_id)  # before the snapshot: nothing published meanwhile is lost
        try:
            ending = await _Session(websocket, follower, self.directory, self.ping_seconds).run()
        finally:
            self.hub.leave(follower)
        if ending is not None:
            await websocket.close(ending.code, _short(ending.reason))


class _Session:
    """One accepted socket of one agent's owner: snapshot, then events, client messages and pings."""

    def __init__(
        self, websocket: WebSocket, follower: Follower, directory: PositionsDirectory, ping_seconds: float
    ) -> None:
        self.websocket = websocket
        self.follower = follower
        self.directory = directory
        self.ping_seconds = ping_seconds
        self.loop = asyncio.get_running_loop()
        self.heard = self.loop.time()

    async def run(self) -> _Close | None:
        """Serve until one side ends it: how to close, or None when the client went away."""
        agent_id = self.follower.agent_id
        await self._send(_stamped("connected", {"agentId": agent_id}))
        positions = await self.directory.initial_positions(agent_id)
        await self._send(_stamped("initial_data", {"positions": positions}))
        known = {str(p.get("id")) for p in positions}
        tasks = [
            asyncio.create_task(self._forward(known, self.follower.queue.qsize())),
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._keepalive()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        first = done.pop()
        if first.exception() is not None and isinstance(first.exception(), WebSocketDisconnect):
            return None
        return first.result()

    async def _send(self, message: dict[str, Any]) -> None:
        await self.websocket.send_text(json_text(message))

    async def _forward(self, known: set[str], queued: int) -> _Close:
        """The hub's messages as they come; ``queued`` of them were published during the snapshot."""
        queue = self.follower.queue
        send = self.websocket.send_text
        while True:
            message = await queue.get()
            if message is None:
                if self.follower.dropped:
                    return _Close(TRY_AGAIN_LATER, "too slow; reconnect")
                return _Close(GOING_AWAY, "server shutting down")
            if queued:
                queued -= 1
                if _already_known(message, known):
                    continue
            await send(json_text(message))

    async def _listen(self) -> None:
        """The client's messages, each answered when it asks for an answer, until it leaves."""
        while True:
            received = await self.websocket.receive()
            if received["type"] == "websocket.disconnect":
                return
            self.heard = self.loop.time()
            answer = self._answer(received.get("text"))
            if answer is not None:
                await self._send(answer)

    def _answer(self, text: str | None) -> dict[str, Any] | None:
        if text is None:
            return _error('send JSON text messages, e.g. {"type": "pong"}')
        if len(text) > MAX_CLIENT_MESSAGE or len(text.encode()) > MAX_CLIENT_MESSAGE:
            return _error(f"message too large: at most {MAX_CLIENT_MESSAGE} bytes")
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return _error("messages are JSON objects with a type: ping, pong or subscribe")
        kind = message["type"]
        if kind == "ping":
            return envelope("pong", {})
        if kind == "pong":
            return None
        if kind == "subscribe":
            return envelope("subscribed", {"agentId": self.follower.agent_id})
        return _error(f"unknown message type {kind[:40]!r}: ping, pong or subscribe")

    async def _keepalive(self) -> _Close:
        """Ping every interval; give up after two intervals without a word from the client."""
        while True:
            await asyncio.sleep(self.ping_seconds)
            if self.loop.time() - self.heard > 2 * self.ping_seconds:
                return _Close(INTERNAL_ERROR, "ping timeout")
            await self._send(envelope("ping", {}))


def _stamped(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """An envelope whose data carries its timestamp too (``connected``, ``initial_data``)."""
    message = envelope(kind, data)
    data["timestamp"] = message["timestamp"]
    return message


def _error(message: str) -> dict[str, Any]:
    return envelope("error", {"message": message})


def _already_known(message: dict[str, Any], known: set[str]) -> bool:
    """A ``position_created`` for a position the snapshot already had."""
    if message.get("type") != "position_update":
        return False
    data = message.get("data") or {}
    if data.get("eventType") != "position_created":
        return False
    position = data.get("position") or {}
    return str(position.get("id")) in known


def _short(reason: str) -> str:
    """``reason`` cut to what a close frame can carry (123 bytes of UTF-8)."""
    raw = reason.encode()
    if len(raw) <= MAX_REASON:
        return reason
    return raw[:MAX_REASON].decode(errors="ignore")


async def _refuse(websocket: WebSocket, message: str) -> None:
    await websocket.send_text(json_text(_error(message)))
    await websocket.close(POLICY_VIOLATION, _short(message))
