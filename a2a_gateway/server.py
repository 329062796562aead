"""Serving an ASGI app: the data directory locked on SQLite, a socket bound up front, uvicorn with limits.

The gateway and every kit agent start through here. On SQLite the data directory is locked first (two
processes on one SQLite file corrupt tasks; on PostgreSQL the directory holds only what processes may
share, such as a generated pepper, so it is not locked), the port is bound next (a taken port is a
one-line error, not a log traceback), and uvicorn runs with an HTTP protocol that caps connections per
client address and closes connections whose request head does not arrive in time (slowloris). Forwarded
headers are believed only from the configured proxies. Stopping is a drain: the listener closes, the
app's drain starts (readiness 503, every open stream ends with a final frame telling its client to
reconnect), calls in flight finish, and whatever is still open after ``drain_seconds`` is cancelled
before the app's own shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import cast

import uvicorn
import uvloop
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from a2a_gateway.api.health import Drain
from a2a_gateway.api.sse_stream import CONNECTION
from a2a_gateway.settings import Settings

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TOO_MANY = b"too many connections from this address\n"
_TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_MANY), _TOO_MANY)
)


class StartupError(Exception):
    """The server cannot start; the message is one line an operator can act on."""


class DataDirLock:
    """An exclusive lock on a data directory (``flock`` on its ``.lock`` file), released on close or exit."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the directory back; closing the file drops the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def lock_data_dir(data_dir: Path, wait_seconds: float = 0.0) -> DataDirLock:
    """Take the data directory for this process, waiting up to ``wait_seconds`` for another to let go.

    The lock file holds the owner's pid, so the error can say who has it. The lock dies with the
    process, however it ends (kill -9 included), and is not inherited by child processes.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_pid(fd)
                os.close(fd)
                by = f" (pid {holder})" if holder else ""
                raise StartupError(
                    f"data directory {data_dir} is in use by another process{by}; "
                    "stop it or choose another data directory"
                ) from None
            time.sleep(0.1)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DataDirLock(path, fd)


def _read_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else ""


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or a StartupError saying why not (port taken, bad host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as error:
        # create_server rewraps the error with a long suffix; the errno's own text is the one line we want.
        if error.errno and error.errno > 0:
            reason = os.strerror(error.errno)
        else:  # a name that does not resolve (getaddrinfo's codes are negative)
            reason = "unknown host" if error.errno else str(error)
        raise StartupError(f"cannot listen on {host}:{port}: {reason}") from None


def guarded_http_protocol(header_timeout: float, max_per_client: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a per-address connection cap and a request-head deadline.

    Each call makes a new class with its own connection counts, so every server counts for itself.
    """
    open_by_client: Counter[str] = Counter()

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """Refuses a client's connection past the cap (503), closes a slow request head (408)."""

        counts = open_by_client
        _peer: str | None = None
        _refused = False
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transport = cast(asyncio.Transport, transport)
            super().connection_made(transport)
            peer = self.client[0] if self.client else None
            if peer is not None:
                if open_by_client[peer] >= max_per_client:
                    self._refused = True
                    transport.write(_TOO_MANY_CONNECTIONS)
                    transport.close()
                    return
                open_by_client[peer] += 1
                self._peer = peer
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._release()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._refused:
                super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._head_timer is None:
                self._arm_head_timer()

        def on_headers_complete(self) -> None:
            self._cancel_head_timer()
            super().on_headers_complete()
            # A2A streams write their frames straight onto this connection (api/sse_stream.py).
            self.scope.setdefault("extensions", {})[CONNECTION] = {"protocol": self}

        def handle_websocket_upgrade(self) -> None:
            # The WebSocket protocol takes the transport over and this object never hears of it again.
            self._release()
            super().handle_websocket_upgrade()

        def _arm_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _release(self) -> None:
            self._cancel_head_timer()
            if self._peer is not None:
                open_by_client[self._peer] -= 1
                if open_by_client[self._peer] <= 0:
                    del open_by_client[self._peer]
                self._peer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                # A pipelined request's head waits while the previous response is written: not slow.
                self._arm_head_timer()
                return
            if not self.transport.is_closing():
                self.transport.write(_REQUEST_TIMEOUT)
                self.transport.close()

    return GuardedHttpToolsProtocol


WS_MAX_BYTES = 64 * 1024


def build_config(app: ASGIApp, settings: Settings, *, log_level: str | None = None) -> uvicorn.Config:
    """uvicorn's configuration for the gateway or a kit agent, with the client limits from ``settings``."""
    trusted = list(settings.trusted_proxies)
    return uvicorn.Config(
        app,
        http=guarded_http_protocol(settings.header_timeout_seconds, settings.max_connections_per_client),
        lifespan="on",
        log_level=(log_level or settings.log_level).lower(),
        # uvicorn believes X-Forwarded-For from loopback unless told otherwise; we believe no one by default.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or [],
        access_log=False,  # the gateway writes its own line per call
        timeout_graceful_shutdown=settings.drain_seconds,
        # WebSockets (an agent's own, such as the trading engine's): no per-message compression, which
        # would compress every broadcast once per client, and client messages of at most 64 KiB.
        ws_per_message_deflate=False,
        ws_max_size=WS_MAX_BYTES,
    )


class _Server(uvicorn.Server):
    """uvicorn's server that says when start-up is over, leaves signals to its owner and starts the
    app's drain as its shutdown begins."""

    def __init__(self, config: uvicorn.Config, drain: Drain | None = None) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self._drain = drain

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit:  # the app's lifespan failed (uvicorn logged why)
            self.should_exit = True
        finally:
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._drain is not None:
            self._drain.start()
        await super().shutdown(sockets=sockets)


class AppServer:
    """One app served by uvicorn on an already bound socket, as a task of the running event loop."""

    def __init__(
        self, app: ASGIApp, settings: Settings, sock: socket.socket, *, log_level: str | None = None
    ) -> None:
        drain = getattr(getattr(app, "state", None), "drain", None)
        self._server = _Server(
            build_config(app, settings, log_level=log_level),
            drain if isinstance(drain, Drain) else None,
        )
        self._sock = sock
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port the socket is bound to."""
        return int(self._sock.getsockname()[1])

    def connections_from(self, address: str) -> int:
        """How many connections from ``address`` are open (and counted against its cap) now."""
        counts = getattr(self._server.config.http, "counts", None)
        return int(counts.get(address, 0)) if counts is not None else 0

    async def start(self) -> None:
        """Run the app's start-up and begin accepting connections; StartupError when the app fails."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="uvicorn")
        ready = asyncio.create_task(self._server.ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not self._server.started:
            await self._task
            raise StartupError("the app failed to start (see the log above)")

    def stop(self, *, force: bool = False) -> None:
        """Begin the drain: stop listening, end streams, let calls in flight finish for up to the drain's
        bound (``force``: stop waiting for open connections and tasks)."""
        self._server.should_exit = True
        if force:
            self._server.force_exit = True

    async def wait(self) -> None:
        """Until the server has shut down."""
        if self._task is not None:
            await self._task


@contextlib.contextmanager
def stop_signals(on_second_interrupt: Callable[[], None] | None = None) -> Iterator[asyncio.Event]:
    """An event that SIGINT or SIGTERM sets while the block runs; a second SIGINT calls the callback."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def received(sig: signal.Signals) -> None:
        if stop.is_set() and sig == signal.SIGINT and on_second_interrupt is not None:
            on_second_interrupt()
        stop.set()

    handled = (signal.SIGINT, signal.SIGTERM)
    for sig in handled:
        loop.add_signal_handler(sig, received, sig)
    # A worker process starts with these blocked (workers.py), so that a stop sent while it was starting
    # is not lost: from here on they reach the handlers above.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
    try:
        yield stop
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def uses_sqlite(settings: Settings) -> bool:
    """Whether the database is an SQLite file, which only one process may open."""
    return settings.resolved_database_url().startswith("sqlite")


def data_dir_guard(settings: Settings) -> contextlib.AbstractContextManager[object]:
    """The data directory's lock where it protects something (SQLite), else nothing to hold."""
    if uses_sqlite(settings):
        return lock_data_dir(settings.data_dir)
    return contextlib.nullcontext()


def serve(build_app: Callable[[], ASGIApp], settings: Settings, host: str, port: int) -> None:
    """Lock the data directory (SQLite), bind ``host:port`` and serve until SIGINT or SIGTERM.

    Raises StartupError (one line for the operator) when the directory is taken, the port cannot be
    bound or the app's start-up fails.
    """
    with data_dir_guard(settings):
        sock = listen(host, port)
        with sock:
            serve_on(build_app, settings, sock, host)


def serve_on(
    build_app: Callable[[], ASGIApp],
    settings: Settings,
    sock: socket.socket,
    host: str,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve on an already bound socket until SIGINT or SIGTERM, on an event loop of its own.

    ``on_ready`` is called once the app has started and the socket accepts (instead of the "listening"
    log line); StartupError when the app's start-up fails.
    """
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve_until_stopped(build_app, settings, sock, host, on_ready))


async def _serve_until_stopped(
    build_app: Callable[[], ASGIApp],
    settings: Settings,
    sock: socket.socket,
    host: str,
    on_ready: Callable[[], None] | None = None,
) -> None:
    server: AppServer | None = None

    def force() -> None:
        if server is not None:
            server.stop(force=True)

    with stop_signals(force) as stop:  # a signal during start-up stops the server once it is up
        server = AppServer(build_app(), settings, sock)
        await server.start()
        if on_ready is None:
            log.info("listening on http://%s:%d", f"[{host}]" if ":" in host else host, server.port)
        else:
            on_ready()
        waiter = asyncio.create_task(stop.wait())
        serving = asyncio.create_task(server.wait())
        await asyncio.wait({waiter, serving}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        server.stop()
        await serving
