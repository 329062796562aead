"""Shared fixtures: settings on a temporary database, the app in process, a real uvicorn server."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.app import create_gateway_app
from a2a_gateway.auth import passwords
from a2a_gateway.settings import Settings
from agents_examples.echo import ECHO_AGENT

POSTGRES_URL = os.environ.get("A2A_GATEWAY_TEST_POSTGRES_URL")
LOOPBACK = ["127.0.0.1", "::1", "localhost"]


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: own data directory, loopback allowed for webhooks, fast retries."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "public_url": "http://testserver",
        "outbound_allowlist": LOOPBACK,
        "push_backoff_seconds": 0.01,
        "push_timeout_seconds": 5.0,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


# Argon2id at its production cost (64 MiB, t=3) takes about 0.3 s per registered user and login, most of
# the setup of every test that signs people up. Tests get the same code paths at the lowest cost; the
# password tests (tests/auth/test_passwords.py) keep the production parameters they pin.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
CHEAP_DUMMY_HASH = CHEAP_HASHER.hash("a password nobody has")


@pytest.fixture(autouse=True)
def cheap_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap Argon2 parameters for every test but the ones about the parameters themselves."""
    if request.module.__name__.endswith("test_passwords"):
        return
    monkeypatch.setattr(passwords, "_HASHER", CHEAP_HASHER)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", CHEAP_DUMMY_HASH)


def sqlite_workers() -> set[threading.Thread]:
    """The threads of open aiosqlite connections (aiosqlite runs each one on a thread named after its
    worker function)."""
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


@pytest.fixture(autouse=True)
def no_database_connection_outlives_its_test() -> Iterator[None]:
    """Fail a test that leaves a SQLite connection open: an engine not disposed, or work still running
    on it when its app stopped (its thread would later answer into a closed event loop)."""
    before = sqlite_workers()
    yield  # torn down after the test's other fixtures, so after its apps have stopped
    left = sqlite_workers() - before
    for thread in left:
        thread.join(timeout=2)  # a closed connection's thread ends at once
    alive = sorted(t.name for t in left if t.is_alive())
    if alive:
        pytest.fail(f"database connections left open by this test: {', '.join(alive)}", pytrace=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh SQLite file."""
    return make_settings(tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The gateway app (serving the echo skills), started and stopped around the test."""
    application = create_gateway_app(settings, local_skills=ECHO_AGENT.skills)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn server on a loopback port, running in the test's event loop."""

    def __init__(self, app: Starlette, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start serving and wait until the socket accepts connections."""
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("uvicorn did not start")

    async def stop(self) -> None:
        """Graceful shutdown: the app's drain first (its streams end), as a2a_gateway.server does."""
        drain = getattr(getattr(self.server.config.app, "state", None), "drain", None)
        if drain is not None:
            drain.start()
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=15)


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Factory: start the gateway (or any app) on a free loopback port; all are stopped afterwards."""
    servers: list[LiveServer] = []

    async def start(app: Starlette | None = None, **overrides: Any) -> LiveServer:
        port = free_port()
        if app is None:
            cfg = make_settings(
                tmp_path / f"srv{len(servers)}", public_url=f"http://127.0.0.1:{port}", **overrides
            )
            app = create_gateway_app(cfg, local_skills=ECHO_AGENT.skills)
        server = LiveServer(app, port)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        await server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database URL: SQLite always, PostgreSQL when A2A_GATEWAY_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("A2A_GATEWAY_TEST_POSTGRES_URL is not set; PostgreSQL contract tests skipped")
    import asyncpg

    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"a2a_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = (
        POSTGRES_URL
        if "+asyncpg" in POSTGRES_URL
        else POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://")
    )
    yield base.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
