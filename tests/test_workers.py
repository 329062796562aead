"""``serve --workers N``: refused on SQLite and without Redis; on PostgreSQL and Redis, N processes on one
socket answer, connections land on more than one of them, and SIGTERM to the parent ends them all cleanly.

The gateway runs as a real command (``python -m a2a_gateway``). Which worker answered a connection is read
from /proc: the worker whose descriptors include the server side of that TCP connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from a2a_gateway.settings import Settings
from a2a_gateway.workers import stop_grace
from tests.conftest import POSTGRES_URL, free_port

REDIS_URL = os.environ.get("A2A_GATEWAY_TEST_REDIS_URL")
DRAIN_SECONDS = 2
START_TIMEOUT = 60.0


def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    import subprocess

    full_env = {"A2A_GATEWAY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", **env}
    command = [sys.executable, "-m", "a2a_gateway", *args]
    done = subprocess.run(
        command, env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode, done.stdout, done.stderr


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "serve", "--workers", "2", "--port", str(free_port()))
    assert code == 2 and out == ""
    assert err == (
        "a2a-gateway: error: --workers above 1 needs PostgreSQL and Redis: set A2A_GATEWAY_DATABASE_URL "
        "to a PostgreSQL URL and A2A_GATEWAY_REDIS_URL (SQLite takes one process)\n"
    )


def test_several_workers_from_the_environment_are_refused_the_same_way(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "serve", "--port", str(free_port()), A2A_GATEWAY_WORKERS="3")
    assert code == 2 and err.startswith("a2a-gateway: error: --workers above 1 needs PostgreSQL and Redis")


def test_several_workers_without_redis_are_refused_in_one_line(tmp_path: Path) -> None:
    # The refusal comes before any connection: the database need not exist.
    database = "postgresql+asyncpg://nobody:secret-password@127.0.0.1:1/none"
    code, out, err = run(
        tmp_path, "serve", "--workers", "2", "--port", str(free_port()), A2A_GATEWAY_DATABASE_URL=database
    )
    assert code == 2 and out == ""
    assert err == (
        "a2a-gateway: error: --workers above 1 needs A2A_GATEWAY_REDIS_URL: the processes share the event "
        "bus, rate limits and nonces through Redis\n"
    )
    assert "secret-password" not in err


def test_a_worker_that_fails_to_start_stops_the_others_and_the_parent_says_so(tmp_path: Path) -> None:
    nothing = "127.0.0.1:1"  # nobody listens on port 1: the app's start-up cannot reach its database
    code, out, err = run(
        tmp_path,
        "serve",
        "--workers",
        "2",
        "--port",
        str(free_port()),
        A2A_GATEWAY_DATABASE_URL=f"postgresql+asyncpg://postgres@{nothing}/none",
        A2A_GATEWAY_REDIS_URL=f"redis://{nothing}/0",
    )
    assert code == 1 and out == ""
    assert err.endswith("\na2a-gateway: error: a worker failed to start (see the log above)\n"), err
    assert "failed to start (exit code 1); stopping the others" in err


@dataclass
class Shared:
    """A fresh PostgreSQL database and a Redis key prefix of this test's own."""

    database_url: str
    redis_prefix: str


@pytest.fixture
async def shared() -> AsyncIterator[Shared]:
    if not POSTGRES_URL or not REDIS_URL:
        pytest.skip("A2A_GATEWAY_TEST_POSTGRES_URL and A2A_GATEWAY_TEST_REDIS_URL are not both set")
    import asyncpg
    import redis.asyncio as aioredis

    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"a2a_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = (
        POSTGRES_URL if "+asyncpg" in POSTGRES_URL else dsn.replace("postgresql://", "postgresql+asyncpg://")
    )
    prefix = f"a2a-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield Shared(base.rsplit("/", 1)[0] + "/" + name, prefix)
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        client = aioredis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


@dataclass
class Gateway:
    """A gateway command running as a child of the test, its stderr read line by line."""

    process: asyncio.subprocess.Process
    port: int
    lines: list[str] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    ended: bool = False
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            async with self.changed:
                self.lines.append(raw.decode(errors="replace"))
                self.changed.notify_all()
        async with self.changed:
            self.ended = True
            self.changed.notify_all()

    async def wait_for_line(self, text: str, count: int = 1, timeout: float = START_TIMEOUT) -> str:
        """The ``count``-th stderr line containing ``text``, once it has come (fails if the process ends
        first)."""

        def found() -> str | None:
            matching = [line for line in self.lines if text in line]
            return matching[count - 1] if len(matching) >= count else None

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: found() or self.ended), timeout)
        line = found()
        assert line is not None, "".join(self.lines)
        return line

    async def wait_listening(self) -> None:
        await self.wait_for_line("listening on http://127.0.0.1:")


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, shared: Shared | None, *args: str) -> AsyncIterator[Gateway]:
    """``serve`` on a free port with ``args``, on the shared database and Redis (else SQLite)."""
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "A2A_GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "A2A_GATEWAY_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "A2A_GATEWAY_LOG_LEVEL": "INFO",
    }
    if shared is not None:
        env["A2A_GATEWAY_DATABASE_URL"] = shared.database_url
        env["A2A_GATEWAY_REDIS_URL"] = str(REDIS_URL)
        env["A2A_GATEWAY_REDIS_PREFIX"] = shared.redis_prefix
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "a2a_gateway",
        "serve",
        "--port",
        str(port),
        *args,
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    running = Gateway(process, port)
    running.reader = asyncio.create_task(running.read())
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await running.reader


def get(port: int, path: str) -> tuple[socket.socket, bytes]:
    """A GET on a new kept-alive connection: the open socket and the whole response."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not _complete(data):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return sock, data


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def children(parent: int) -> set[int]:
    """The pids whose parent is ``parent``."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    found.add(int(entry))
    return found


def owner(server_port: int, client_port: int, candidates: set[int]) -> int | None:
    """Which of ``candidates`` holds the server side of the loopback connection from ``client_port``."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in candidates:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def answering_workers(port: int, workers: set[int], want: int, tries: int = 200) -> set[int]:
    """The workers seen answering /health/ready on new connections, until ``want`` of them or ``tries``."""
    seen: set[int] = set()
    for _ in range(tries):
        sock, response = get(port, "/health/ready")
        with sock:
            assert response.startswith(b"HTTP/1.1 200"), response
            assert response.endswith(b'{"status":"ready"}'), response
            pid = owner(port, sock.getsockname()[1], workers)
        assert pid is not None
        seen.add(pid)
        if len(seen) >= want:
            break
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_two_workers_share_the_socket_and_stop_together(
    tmp_path: Path, shared: Shared, stop: signal.Signals
) -> None:
    code, _, err = run(
        tmp_path, "db", "upgrade", A2A_GATEWAY_DATABASE_URL=shared.database_url
    )  # PostgreSQL is never migrated at start-up
    assert code == 0, err
    async with gateway(tmp_path, shared, "--workers", "2") as parent:
        # Each worker logs its own "listening on" line too: the parent's comes once both have started.
        await parent.wait_for_line("with 2 workers")
        workers = children(parent.process.pid)
        assert len(workers) == 2, workers
        seen = await asyncio.to_thread(answering_workers, parent.port, workers, 2)
        assert seen == workers

        # With PostgreSQL the data directory is not locked: another gateway may share it.
        async with gateway(tmp_path, shared) as single:
            await single.wait_listening()
            sock, response = await asyncio.to_thread(get, single.port, "/health/ready")
            sock.close()
            assert response.startswith(b"HTTP/1.1 200"), response
            single.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(single.process.wait(), DRAIN_SECONDS + 10) == 0

        parent.process.send_signal(stop)
        grace = stop_grace(Settings(drain_seconds=DRAIN_SECONDS))
        assert await asyncio.wait_for(parent.process.wait(), grace) == 0, "".join(parent.lines)
        assert any(f"stopping 2 workers ({stop.name})" in line for line in parent.lines)
        for pid in workers:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    assert not any("Traceback" in line for line in parent.lines), "".join(parent.lines)


@pytest.mark.slow
async def test_a_worker_that_dies_is_replaced_and_the_parent_ends_with_1(
    tmp_path: Path, shared: Shared
) -> None:
    code, _, err = run(tmp_path, "db", "upgrade", A2A_GATEWAY_DATABASE_URL=shared.database_url)
    assert code == 0, err
    async with gateway(tmp_path, shared, "--workers", "2") as parent:
        await parent.wait_for_line("with 2 workers")
        first = children(parent.process.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        await parent.wait_for_line(f"worker {victim} died (signal SIGKILL); starting another")
        await parent.wait_for_line("Application startup complete", count=3)  # the replacement's
        now = children(parent.process.pid)
        assert len(now) == 2 and victim not in now and (first - {victim}) < now
        parent.process.send_signal(signal.SIGTERM)
        grace = stop_grace(Settings(drain_seconds=DRAIN_SECONDS))
        assert await asyncio.wait_for(parent.process.wait(), grace) == 1, "".join(parent.lines)


@pytest.mark.slow
async def test_a_public_url_from_the_env_file_is_kept(tmp_path: Path) -> None:
    # Every process behind one address must carry the same public URL (and so token issuer), whether it
    # comes from the environment or from .env; serve's own default follows --host and --port.
    (tmp_path / ".env").write_text("A2A_GATEWAY_PUBLIC_URL=http://gateway.example.test\n")
    async with gateway(tmp_path, None) as single:
        await single.wait_listening()
        sock, response = await asyncio.to_thread(get, single.port, "/.well-known/agent-card.json")
        sock.close()
        assert b'"http://gateway.example.test/a2a"' in response, response[:500]
        single.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(single.process.wait(), DRAIN_SECONDS + 10) == 0
