"""Several real gateway processes on one PostgreSQL database and one Redis, with a real echo agent.

`Cluster.start` makes a fresh database (dropped afterwards) and a Redis key prefix (deleted afterwards),
migrates, starts ``size`` ``a2a-gateway serve`` processes with the settings that must match across
processes, a user with a key, and the echo agent registered with the first process. Everything binds to
127.0.0.1 and every wait is bounded. ``Cluster.restart`` replaces a process (SIGKILL) by a new one on the
same port, so a balancer in front keeps its upstreams; ``new_user`` adds another user with a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import redis.asyncio as aioredis

POSTGRES_URL = os.environ.get("A2A_GATEWAY_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("A2A_GATEWAY_TEST_REDIS_URL")
START_TIMEOUT_S = 30.0
LEASE_SECONDS = 3  # short, so a killed process's tasks are taken over within seconds
SCOPES = ["agents:read", "agents:write", "billing:read", "keys:write", "tasks:read", "tasks:write"]


def needs_services() -> None:
    """Skip unless PostgreSQL and Redis are configured for tests."""
    if not POSTGRES_URL or not REDIS_URL:
        pytest.skip(
            "A2A_GATEWAY_TEST_POSTGRES_URL and A2A_GATEWAY_TEST_REDIS_URL are needed (several processes)"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """One child process and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no lease handed over."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    """Gateway processes sharing one database and Redis, and the echo agent behind them."""

    root: Path
    database_url: str
    prefix: str
    pepper: str
    gateways: list[Process] = field(default_factory=list)
    retired: list[Process] = field(default_factory=list)  # replaced by restart (killed)
    echo: Process | None = None
    key: str = ""
    agent_id: str = ""
    public_url: str = ""
    owner: User | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # settings a test adds (same on every process)

    def env(self, data_dir: Path, port: int) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "A2A_GATEWAY_DATA_DIR": str(data_dir),
            "A2A_GATEWAY_DATABASE_URL": self.database_url,
            "A2A_GATEWAY_REDIS_URL": REDIS_URL or "",
            "A2A_GATEWAY_REDIS_PREFIX": self.prefix,
            "A2A_GATEWAY_KEY_PEPPER": self.pepper,
            "A2A_GATEWAY_PUBLIC_URL": self.public_url or f"http://127.0.0.1:{port}",
            "A2A_GATEWAY_OUTBOUND_ALLOWLIST": '["127.0.0.1"]',
            "A2A_GATEWAY_PROCESS_LEASE_SECONDS": str(LEASE_SECONDS),
            "A2A_GATEWAY_HEALTH_CHECK_SECONDS": "0",
            "A2A_GATEWAY_LOG_LEVEL": "INFO",
            "A2A_GATEWAY_DRAIN_SECONDS": "3",
        } | self.extra_env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``a2a-gateway ARGS`` against the shared database."""
        env = self.env(self.root / "cli", 0)
        command = [sys.executable, "-m", "a2a_gateway", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    async def add_gateway(self) -> Process:
        """Start one more gateway process and wait until it is ready."""
        gateway = self._launch(free_port())
        self.gateways.append(gateway)
        await wait_ready(gateway)
        return gateway

    async def restart(self, index: int) -> Process:
        """SIGKILL gateway ``index`` (when alive) and put a new process on its port in its place (a
        balancer in front keeps its upstream list); waits until the new one is ready."""
        old = self.gateways[index]
        old.kill()
        self.retired.append(old)
        gateway = self._launch(old.port)
        self.gateways[index] = gateway
        await wait_ready(gateway)
        return gateway

    def _launch(self, port: int) -> Process:
        n = len(self.gateways) + len(self.retired)
        data_dir = self.root / f"gateway-{n}"
        data_dir.mkdir(parents=True, exist_ok=True)
        log = self.root / f"gateway-{n}.log"
        command = [sys.executable, "-m", "a2a_gateway", "serve", "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, env=self.env(data_dir, port), stdout=out, stderr=subprocess.STDOUT
            )
        return Process(f"gateway-{n}", proc, log, port)

    async def start_echo(self) -> None:
        """The echo agent, registered with the first gateway by the user's key."""
        port = free_port()
        log = self.root / "echo.log"
        first = self.gateways[0]
        command = [
            sys.executable, "-m", "agents_examples.echo", "--port", str(port),
            "--data-dir", str(self.root / "echo"), "--gateway-url", first.url,
        ]  # fmt: skip
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "A2A_GATEWAY_GATEWAY_KEY": self.key,
            "A2A_GATEWAY_OUTBOUND_ALLOWLIST": '["127.0.0.1"]',
            "A2A_GATEWAY_HEARTBEAT_SECONDS": "20",
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.echo = Process("echo", proc, log, port)
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(base_url=first.url, headers=self.auth, timeout=5) as client:
            while time.monotonic() < deadline:
                if not self.echo.alive():
                    raise AssertionError(f"the echo agent exited:\n{self.echo.output()}")
                listed = (await client.get("/api/v1/agents")).json()
                agents = listed.get("data", listed) if isinstance(listed, dict) else listed
                for agent in agents if isinstance(agents, list) else []:
                    if agent.get("name") == "Echo Agent":
                        self.agent_id = str(agent["id"])
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"the echo agent never registered:\n{self.echo.output()}")

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.key, "A2A-Version": "1.0"}

    def rpc_url(self, gateway: Process) -> str:
        return f"{gateway.url}/a2a/agents/{self.agent_id}"

    def logs(self) -> str:
        parts = [
            f"--- {p.name} ---\n{p.output()[-4000:]}"
            for p in [*self.retired, *self.gateways, *([self.echo] if self.echo else [])]
        ]
        return "\n".join(parts)


async def wait_ready(gateway: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if not gateway.alive():
                raise AssertionError(f"{gateway.name} exited:\n{gateway.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{gateway.url}/health/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{gateway.name} never got ready:\n{gateway.output()}")


@contextlib.asynccontextmanager
async def cluster(root: Path, size: int, env: dict[str, str] | None = None) -> AsyncIterator[Cluster]:
    """``size`` gateway processes on a fresh database and Redis prefix, a user key and the echo agent;
    ``env``: settings added to every process's environment (and the CLI's)."""
    needs_services()
    assert POSTGRES_URL is not None and REDIS_URL is not None
    name = f"a2a_cluster_{secrets.token_hex(5)}"
    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    url = base.replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    if "+asyncpg" not in url:
        url = url.replace("postgresql:", "postgresql+asyncpg:")
    prefix = f"a2a-test-{secrets.token_hex(5)}:"
    made = Cluster(root, url, prefix, secrets.token_hex(16), extra_env=dict(env or {}))
    try:
        upgraded = made.cli("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        first = await made.add_gateway()
        made.public_url = first.url
        await register(made, first)
        for _ in range(size - 1):
            await made.add_gateway()
        await made.start_echo()
        yield made
    finally:
        for process in [*made.retired, *made.gateways, *([made.echo] if made.echo else [])]:
            process.stop()
        redis = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=500)]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


@dataclass(frozen=True)
class User:
    """A registered user and one API key of theirs."""

    email: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.key, "A2A-Version": "1.0"}


async def register(made: Cluster, gateway: Process) -> None:
    """The cluster's user (the echo agent's owner): a key that may register agents and run tasks."""
    made.owner = await new_user(gateway)
    made.key = made.owner.key


async def new_user(gateway: Process, scopes: list[str] | None = None) -> User:
    """Register a user on ``gateway`` and mint an API key with ``scopes`` (SCOPES by default)."""
    email, password = f"user-{secrets.token_hex(4)}@example.com", secrets.token_hex(12)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        created = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert created.status_code == 201, created.text
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        token = login.json()["data"]["accessToken"] if "data" in login.json() else login.json()["accessToken"]
        minted = await client.post(
            "/api/v1/api-keys",
            json={"name": "cluster test", "scopes": scopes or SCOPES},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert minted.status_code == 201, minted.text
        body = minted.json()
        return User(email, str(body.get("data", body)["key"]))


# --- A2A over JSON-RPC ------------------------------------------------------------------------------


def rpc(method: str, params: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def countdown(n: int) -> dict[str, Any]:
    """SendMessage params for the echo agent's countdown skill (n chunks, 100 ms apart)."""
    return {
        "message": {
            "messageId": secrets.token_hex(8),
            "role": "ROLE_USER",
            "parts": [{"text": str(n)}],
        },
        "metadata": {"skillId": "countdown"},
        "configuration": {"returnImmediately": True},
    }


async def sse_results(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Each JSON-RPC message of an SSE response (its ``result``, or the whole message on an error)."""
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            message = orjson.loads(line[5:].strip())
            yield message.get("result", message) if "error" not in message else message
