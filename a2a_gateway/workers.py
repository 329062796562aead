"""Several worker processes serving one gateway on one listening socket (``serve --workers N``).

The parent binds the socket, then forks the workers: each inherits the socket and runs the ordinary
one-process serve path (its own app and event loop, its own drain on SIGTERM), and the kernel hands each
new connection to one of them. The parent stays single-threaded and without an event loop, so forking a
replacement later is as safe as forking the first ones. It waits on a self-pipe that wakes it for signals
and for the workers' "ready" notes:

- SIGTERM or SIGINT: forwarded to every worker; the parent then waits for them for the drain bound plus
  the app's own shutdown (``stop_grace``) and kills whatever is left;
- a worker that dies before it is ready: the start failed, so the others are stopped too (StartupError);
- a worker that dies after it was ready, while nothing asked it to stop: logged, and another is forked in
  its place; the parent's exit status is 1 at the end, to say that it happened.

Workers run in their own process group, so a Ctrl+C at a terminal reaches the parent alone (which forwards
it once; a second Ctrl+C is forwarded as the second, "stop waiting", SIGINT), and Linux sends each worker
SIGTERM if the parent dies (``kill -9`` included). Several processes are refused on SQLite and without Redis:
one SQLite file takes one writer, and the processes share the event bus, rate limits and nonces through
Redis.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp

from a2a_gateway.server import StartupError, listen, serve_on, uses_sqlite
from a2a_gateway.settings import Settings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_STOPS = (signal.SIGINT, signal.SIGTERM)
_WATCHED = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)
_PID = struct.Struct("=i")
# After the drain, the app's own shutdown still runs: tasks ended, writes committed, the push queue drained
# for up to 5 s.
SHUTDOWN_SECONDS = 10.0


def refusal(settings: Settings) -> str | None:
    """Why these settings cannot run several processes, in one line; None when they can."""
    if uses_sqlite(settings):
        return (
            "--workers above 1 needs PostgreSQL and Redis: set A2A_GATEWAY_DATABASE_URL to a PostgreSQL "
            "URL and A2A_GATEWAY_REDIS_URL (SQLite takes one process)"
        )
    if not settings.redis_url:
        return (
            "--workers above 1 needs A2A_GATEWAY_REDIS_URL: the processes share the event bus, rate "
            "limits and nonces through Redis"
        )
    return None


def stop_grace(settings: Settings) -> float:
    """How long the parent waits for its workers after forwarding a stop before it kills them."""
    return settings.drain_seconds + SHUTDOWN_SECONDS


def serve_workers(
    build_app: Callable[[], ASGIApp], settings: Settings, host: str, port: int, count: int
) -> int:
    """Bind ``host:port``, run ``count`` workers on it until SIGINT or SIGTERM; the exit status (0: every
    worker ended cleanly). StartupError when the port cannot be bound or a worker fails to start."""
    with listen(host, port) as sock:
        supervisor = Supervisor(lambda ready: serve_on(build_app, settings, sock, host, ready), count)
        bound = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"
        return supervisor.run(stop_grace(settings), bound)


@dataclass(slots=True)
class _Worker:
    pid: int
    ready: bool = False


class Supervisor:
    """Forks ``count`` workers running ``target`` and looks after them until they have all ended.

    ``target`` is given a callback to call once the worker accepts connections; it returns when the
    worker has stopped, or raises StartupError when its start failed.
    """

    def __init__(self, target: Callable[[Callable[[], None]], None], count: int) -> None:
        self._target = target
        self._count = count
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._abnormal = False
        self._start_failed = False
        self._ready_r = self._ready_w = -1
        self._own: list[int] = []  # the parent's descriptors, which a worker closes

    def run(self, grace: float, url: str) -> int:
        """Start the workers and supervise them; the exit status once all are gone."""
        wake_r, wake_w = socket.socketpair()
        self._ready_r, self._ready_w = ready_r, _ = os.pipe()
        self._own = [wake_r.fileno(), wake_w.fileno(), ready_r]
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        os.set_blocking(ready_r, False)
        previous = {sig: signal.signal(sig, _ignore) for sig in _WATCHED}
        previous_fd = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(wake_r, selectors.EVENT_READ)
                selector.register(ready_r, selectors.EVENT_READ)
                for _ in range(self._count):
                    self._fork()
                announced = False
                deadline: float | None = None
                while self._workers:
                    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                    if not selector.select(timeout) and deadline is not None:
                        self._kill_stragglers()
                        continue
                    for sig in _signals_from(wake_r):
                        if sig in _STOPS:
                            if not self._stopping:
                                log.info("stopping %d workers (%s)", len(self._workers), sig.name)
                                deadline = time.monotonic() + grace
                            self._stop(sig)
                    self._note_ready()
                    if self._reap() and deadline is None:
                        deadline = time.monotonic() + grace
                    if not announced and self._workers and all(w.ready for w in self._workers.values()):
                        announced = True
                        log.info("listening on %s with %d workers", url, len(self._workers))
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for end in (wake_r, wake_w):
                end.close()
            os.close(self._ready_r)
            os.close(self._ready_w)
        if self._start_failed:
            raise StartupError("a worker failed to start (see the log above)")
        return 1 if self._abnormal else 0

    def _fork(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        # Stops stay blocked in the new worker until its own handlers are in place (server.stop_signals),
        # so one sent while it starts is not lost.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        pid = os.fork()
        if pid == 0:  # the worker: it never returns from here
            _run_worker(self._target, self._ready_w, self._own)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self._workers[pid] = _Worker(pid)
        log.debug("worker %d started", pid)

    def _stop(self, sig: signal.Signals) -> None:
        self._stopping = True
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _note_ready(self) -> None:
        while True:
            try:
                data = os.read(self._ready_r, _PID.size * 64)
            except BlockingIOError:
                return
            if not data:
                return
            for (pid,) in _PID.iter_unpack(data[: len(data) - len(data) % _PID.size]):
                if pid in self._workers:
                    self._workers[pid].ready = True

    def _reap(self) -> bool:
        """Collect ended workers; True when one failed to start (so the others are being stopped)."""
        self._note_ready()  # a worker may say it is ready and die at once
        failed = False
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            worker = self._workers.pop(pid, None)
            if worker is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self._stopping:
                if code != 0:
                    self._abnormal = True
                    log.warning("worker %d ended abnormally while stopping (%s)", pid, _describe(code))
                continue
            self._abnormal = True
            if not worker.ready:
                log.error("worker %d failed to start (%s); stopping the others", pid, _describe(code))
                self._start_failed = failed = True
                self._stop(signal.SIGTERM)
                continue
            log.error("worker %d died (%s); starting another", pid, _describe(code))
            self._fork()
        return failed

    def _kill_stragglers(self) -> None:
        for pid in self._workers:
            log.warning("worker %d did not stop within the grace; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._abnormal = True
        for pid in list(self._workers):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            del self._workers[pid]


def _run_worker(target: Callable[[Callable[[], None]], None], ready_w: int, parents: list[int]) -> None:
    """The body of a forked worker; ends the process with 0 (stopped), 1 (failed) or 2 (orphaned)."""
    code = 1
    try:
        parent = os.getppid()
        signal.set_wakeup_fd(-1)
        for sig in _WATCHED:
            signal.signal(sig, signal.SIG_DFL)
        for fd in parents:
            os.close(fd)
        os.setpgid(0, 0)
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before the request took effect
                code = 2
                return

        def ready() -> None:
            os.write(ready_w, _PID.pack(os.getpid()))

        target(ready)
        code = 0
    except StartupError as error:
        log.error("worker %d: %s", os.getpid(), error)
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _ignore(signum: int, frame: object) -> None:
    """A handler that does nothing: the signal's number reaches the parent through its wake-up fd."""


def _signals_from(wake_r: socket.socket) -> list[signal.Signals]:
    numbers = b""
    while True:
        try:
            chunk = wake_r.recv(256)
        except BlockingIOError:
            break
        if not chunk:
            break
        numbers += chunk
    return [signal.Signals(n) for n in numbers if n in {s.value for s in _WATCHED}]


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"
