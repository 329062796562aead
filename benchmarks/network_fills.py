"""What the network benchmark watches and how it picks its signals.

:class:`Fills` follows every trading agent on the engine's positions WebSocket (``/ws``) and keeps,
per token, which agents hold a position: a ``position_created`` is a buy filled, a ``position_closed``
a sell filled, each stamped with ``time.perf_counter()`` as it is read. :meth:`Fills.wait` waits until
every agent holds the token (after a buy) or none does (after a sell) and answers the stamp of the
event that made it so.

:class:`SignalKeys` hands out (publisher, strength) pairs so that no two signals of a run share the
engine's duplicate key (publisher, token, type, strength) within its 60 s window: the window is a
constant (``agents_examples/trading/engine/domain/signals.py``, ``DUPLICATE_WINDOW_MS``), so the run
spreads its signals over several publishers (analysts) and the five strengths. A pair is used again
only after ``window`` seconds; when every pair of a (token, type) is that fresh, :meth:`take` waits,
and the time waited is kept (``waited``) and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect

BUY: Final = "buy"
SELL: Final = "sell"
STRENGTHS: Final = (1, 2, 3, 4, 5)
DUPLICATE_WINDOW_SECONDS: Final = 61.0  # the engine's 60 s, plus a second of margin


@dataclass(frozen=True, slots=True)
class FillEvent:
    """One fill the engine published: when it was read, which agent, which token, buy or sell."""

    stamp: float
    agent_id: str
    token: str
    side: str


@dataclass
class Fills:
    """Every trading agent's positions, followed on the engine's ``/ws`` (module doc)."""

    agents: list[str]
    holding: dict[str, dict[str, str]] = field(default_factory=dict)  # token -> agent -> position id
    changed_at: dict[str, float] = field(default_factory=dict)  # token -> stamp of its last fill
    events: list[FillEvent] = field(default_factory=list)
    _token_of: dict[str, str] = field(default_factory=dict)  # position id -> token
    _waiters: list[tuple[str, str, asyncio.Future[float]]] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)
    _sockets: list[ClientConnection] = field(default_factory=list)

    async def open(self, ws_url: str, credential: str) -> None:
        """Connect one socket per agent and wait for each one's ``initial_data``."""
        for agent_id in self.agents:
            socket = await connect(f"{ws_url}?token={credential}&agentId={agent_id}", max_size=1 << 22)
            self._sockets.append(socket)
            async with asyncio.timeout(15):
                while True:
                    doc = json.loads(await socket.recv())
                    if doc.get("type") == "initial_data":
                        for position in doc["data"]["positions"]:
                            self._opened(agent_id, position, time.perf_counter())
                        break
                    if doc.get("type") == "error":
                        raise RuntimeError(f"/ws refused agent {agent_id}: {doc}")
            self._readers.append(asyncio.create_task(self._read(socket, agent_id)))

    async def close(self) -> None:
        """Close the sockets and stop reading."""
        for reader in self._readers:
            reader.cancel()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        for socket in self._sockets:
            with contextlib.suppress(Exception):
                await socket.close()

    async def _read(self, socket: ClientConnection, agent_id: str) -> None:
        async for raw in socket:
            stamp = time.perf_counter()
            doc = json.loads(raw)
            kind = doc.get("type")
            if kind == "ping":
                await socket.send('{"type": "pong"}')
            elif kind == "position_update":
                data: dict[str, Any] = doc.get("data") or {}
                event = data.get("eventType")
                if event == "position_created":
                    self._opened(agent_id, data["position"], stamp)
                elif event == "position_closed":
                    self._closed(agent_id, str(data.get("positionId")), stamp)

    def _opened(self, agent_id: str, position: dict[str, Any], stamp: float) -> None:
        token = str(position["tokenAddress"])
        self.holding.setdefault(token, {})[agent_id] = str(position["id"])
        self._token_of[str(position["id"])] = token
        self._changed(FillEvent(stamp, agent_id, token, BUY))

    def _closed(self, agent_id: str, position_id: str, stamp: float) -> None:
        token = self._token_of.pop(position_id, None)
        if token is None:
            return
        self.holding.get(token, {}).pop(agent_id, None)
        self._changed(FillEvent(stamp, agent_id, token, SELL))

    def _changed(self, event: FillEvent) -> None:
        self.events.append(event)
        self.changed_at[event.token] = event.stamp
        still = []
        for token, side, future in self._waiters:
            if future.done():
                continue
            if token == event.token and self.settled(token, side):
                future.set_result(event.stamp)
            else:
                still.append((token, side, future))
        self._waiters = still

    def holders(self, token: str) -> int:
        """How many agents hold ``token`` now."""
        return len(self.holding.get(token, {}))

    def settled(self, token: str, side: str) -> bool:
        """Whether every agent holds ``token`` (``buy``) or none does (``sell``)."""
        held = self.holders(token)
        return held == len(self.agents) if side == BUY else held == 0

    async def wait(self, token: str, side: str, timeout: float) -> float | None:
        """The stamp of the fill after which ``side`` is settled for ``token`` (module doc); None when
        it was not within ``timeout`` seconds."""
        if self.settled(token, side):
            return self.changed_at.get(token)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append((token, side, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None

    def since(self, mark: int, token: str, side: str) -> list[FillEvent]:
        """The fills of ``token`` on ``side`` read after ``events[:mark]``."""
        return [e for e in self.events[mark:] if e.token == token and e.side == side]


class SignalKeys:
    """(publisher, strength) pairs that never repeat a duplicate key within the window (module doc)."""

    def __init__(self, publishers: int, tokens: list[str], window: float = DUPLICATE_WINDOW_SECONDS) -> None:
        self.window = window
        self.waited = 0.0
        self._pools: dict[tuple[str, str], deque[list[float | int]]] = {
            (token, side): deque([p, s, -window] for s in STRENGTHS for p in range(publishers))
            for token in tokens
            for side in (BUY, SELL)
        }

    async def take(self, token: str, side: str) -> tuple[int, int]:
        """The least recently used pair of (``token``, ``side``): (publisher index, strength)."""
        pool = self._pools[(token, side)]
        entry = pool.popleft()
        now = time.monotonic()
        ready = float(entry[2]) + self.window
        entry[2] = max(now, ready)
        pool.append(entry)
        if ready > now:
            self.waited += ready - now
            await asyncio.sleep(ready - now)
        return int(entry[0]), int(entry[1])
