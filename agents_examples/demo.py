"""The demo: the gateway with the echo agent as its own process, registered through the gateway.

Run: python -m agents_examples.demo [--host 127.0.0.1] [--port 8000] [--duration SECONDS]

The gateway runs in this process and the echo agent in a child process on the next port. The child dies
with the demo however the demo ends (it gets SIGTERM when its parent dies, kill -9 included), and each
process locks its own data directory, so a second demo on the same data stops with a clear error instead of
sharing the database. The banner is printed once the gateway listens and the echo agent has registered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import uvloop

from a2a_gateway import log
from a2a_gateway.app import build_auth, create_gateway_app
from a2a_gateway.cli import HelpFormatter
from a2a_gateway.errors import Conflict
from a2a_gateway.server import AppServer, StartupError, listen, lock_data_dir, stop_signals
from a2a_gateway.settings import Settings
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.secrets import load_or_create

DEMO_EMAIL = "demo@example.com"
LOOPBACK = ["127.0.0.1", "::1", "localhost"]
AGENT_READY_SECONDS = 60.0
AGENT_STOP_SECONDS = 10.0
PR_SET_PDEATHSIG = 1

BANNER = """
A2A gateway is running at {url}
The echo agent runs as its own process at {agent_url}; it registered itself with the gateway
(owner {email}, password in {password_file}) as agent {agent_id}.

  The gateway's card:   curl -s {url}/.well-known/agent-card.json
  Find agents:          curl -s '{url}/api/v1/discover?skillTags=stream'
  Route by skill (the gateway picks the agent and names it in the task's metadata.agentId):
    curl -s {url}/a2a -H 'A2A-Version: 1.0' -H 'Content-Type: application/json' \\
      -d '{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"message":{{"messageId":"m1","role":"ROLE_USER","parts":[{{"text":"hello"}}]}},"metadata":{{"skillId":"echo"}}}}}}'
  The echo agent through its proxy, A2A 0.3 (no version header):
    curl -s {url}/a2a/agents/{agent_id} -H 'Content-Type: application/json' \\
      -d '{{"jsonrpc":"2.0","id":2,"method":"message/send","params":{{"message":{{"kind":"message","messageId":"m2","role":"user","parts":[{{"kind":"text","text":"hello"}}]}}}}}}'
  Stream a countdown through the proxy:
    curl -sN {url}/a2a/agents/{agent_id} -H 'A2A-Version: 1.0' -H 'Content-Type: application/json' \\
      -d '{{"jsonrpc":"2.0","id":3,"method":"SendStreamingMessage","params":{{"message":{{"messageId":"m3","role":"ROLE_USER","parts":[{{"text":"5"}}]}},"metadata":{{"skillId":"countdown"}}}}}}'
  Its card through the gateway: curl -s {url}/a2a/agents/{agent_id}/.well-known/agent-card.json

{stop}
"""


def demo_settings(host: str, port: int) -> Settings:
    """The gateway's settings from the environment, with what the demo needs on one machine."""
    settings = Settings()
    overrides: dict[str, object] = {"host": host, "port": port}
    if "A2A_GATEWAY_PUBLIC_URL" not in os.environ:
        overrides["public_url"] = f"http://{host}:{port}"
    if "A2A_GATEWAY_OUTBOUND_ALLOWLIST" not in os.environ:
        overrides["outbound_allowlist"] = LOOPBACK  # the agent and any webhook receiver are local
    if "A2A_GATEWAY_HEALTH_CHECK_SECONDS" not in os.environ:
        overrides["health_check_seconds"] = 30.0
    return settings.model_copy(update=overrides)


async def owner_key(settings: Settings) -> str:
    """The demo owner (created on first run, password kept in the data directory) and a fresh API key
    for the echo agent to register itself with."""
    password = load_or_create(settings.data_dir, "demo-owner-password").hex()
    engine = db.create_engine(settings.resolved_database_url())
    try:
        if engine.dialect.name == "sqlite":
            await db.upgrade(engine)
        auth = build_auth(settings, engine)
        with contextlib.suppress(Conflict):  # a previous demo run created it
            await auth.register(DEMO_EMAIL, password)
        session = await auth.login(DEMO_EMAIL, password)
        owner = await auth.authenticate_access_token(session.access_token)
        # keys:write lets the agent mint its own nxk_ key, which it then heartbeats and introspects with.
        scopes = ["agents:read", "agents:write", "keys:write"]
        issued = await auth.create_key(owner, "demo echo agent", scopes, 1)
        return issued.plaintext
    finally:
        await engine.dispose()


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send the child SIGTERM when this process dies (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, only called after it
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def start_echo_agent(settings: Settings, key: str, host: str, port: int) -> subprocess.Popen[bytes]:
    """The echo agent as a child process in this process group, registering with the gateway."""
    data_dir = settings.data_dir / "echo-agent"
    # A previous agent that is still shutting down (its demo was killed) lets go of its data shortly.
    lock_data_dir(data_dir, wait_seconds=AGENT_STOP_SECONDS).release()
    # The child gets only its own settings: none of the gateway's (its database above all).
    env = {k: v for k, v in os.environ.items() if not k.startswith("A2A_GATEWAY_")}
    env |= {
        "A2A_GATEWAY_GATEWAY_KEY": key,
        "A2A_GATEWAY_OUTBOUND_ALLOWLIST": '["127.0.0.1", "::1", "localhost"]',
        "A2A_GATEWAY_HEARTBEAT_SECONDS": "20",
    }
    argv = [sys.executable, "-m", "agents_examples.echo", "--host", host, "--port", str(port),
            "--data-dir", str(data_dir), "--gateway-url", settings.public_url]  # fmt: skip
    # Our own interpreter and module; the preexec_fn only makes one system call.
    return subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent())  # noqa: S603, PLW1509


async def wait_registered(
    gateway_url: str, agent_url: str, agent: asyncio.Task[int], stop: asyncio.Event
) -> str | None:
    """The echo agent's id once it answers and the gateway lists it online; None when told to stop."""
    endpoint = agent_url + "/a2a"
    deadline = time.monotonic() + AGENT_READY_SECONDS
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            if stop.is_set():
                return None
            if agent.done():
                raise StartupError(f"the echo agent exited with code {agent.result()} before it was ready")
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                (await client.get(agent_url + "/.well-known/agent-card.json")).raise_for_status()
                listed = await client.get(gateway_url + "/api/v1/discover", params={"status": "online"})
                for found in listed.json()["data"]:
                    if found["endpoint"] == endpoint:
                        return str(found["id"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    raise StartupError(f"the echo agent did not register with the gateway within {AGENT_READY_SECONDS:.0f} s")


async def stop_agent(agent: subprocess.Popen[bytes], exited: asyncio.Task[int]) -> None:
    """SIGTERM, a grace period, then SIGKILL."""
    if agent.poll() is None:
        agent.terminate()
    try:
        await asyncio.wait_for(asyncio.shield(exited), AGENT_STOP_SECONDS)
    except TimeoutError:
        agent.kill()
        await exited


async def run(settings: Settings, sock: socket.socket, duration: float | None) -> int:
    """Start the echo agent and serve the gateway until Ctrl+C, SIGTERM or ``duration``; the exit code."""
    host, port = settings.host, settings.port
    gateway: AppServer | None = None

    def force() -> None:
        if gateway is not None:
            gateway.stop(force=True)

    with stop_signals(force) as stop:
        key = await owner_key(settings)
        # The child starts before the gateway runs any thread of its own, so it forks a quiet process.
        agent = start_echo_agent(settings, key, host, port + 1)
        exited = asyncio.create_task(asyncio.to_thread(agent.wait))
        try:
            gateway = AppServer(create_gateway_app(settings), settings, sock)
            await gateway.start()
            return await _until_done(settings, f"http://{host}:{port + 1}", exited, stop, duration)
        finally:
            await stop_agent(agent, exited)
            if gateway is not None:
                gateway.stop()
                await gateway.wait()


async def _until_done(
    settings: Settings, agent_url: str, exited: asyncio.Task[int], stop: asyncio.Event, duration: float | None
) -> int:
    url = settings.public_url.rstrip("/")
    agent_id = await wait_registered(url, agent_url, exited, stop)
    if agent_id is None:
        return 0
    until = f"Stops after {duration:g} s." if duration is not None else "Press Ctrl+C to stop."
    password_file = settings.data_dir / "secrets" / "demo-owner-password"
    print(BANNER.format(url=url, agent_url=agent_url, agent_id=agent_id, email=DEMO_EMAIL,
                        password_file=password_file, stop=until), flush=True)  # fmt: skip
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopped, exited}, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if exited in done and not stop.is_set():
        print(f"demo: error: the echo agent stopped (exit code {exited.result()})", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the demo; a reason on one line and exit code 1 when it cannot start."""
    parser = argparse.ArgumentParser(
        prog="python -m agents_examples.demo",
        description="Run the gateway with the echo agent registered through it.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address the gateway and the echo agent listen on"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="the gateway's port; the echo agent takes the next"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop cleanly this many seconds after start-up; unset: run until Ctrl+C",
    )
    args = parser.parse_args(argv)
    settings = demo_settings(args.host, args.port)
    log.configure(settings.log_level, settings.log_json)
    try:
        with lock_data_dir(settings.data_dir):
            sock = listen(args.host, args.port)
            listen(args.host, args.port + 1).close()  # the echo agent's port: say now if it is taken
            with sock, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                code = runner.run(run(settings, sock, args.duration))
    except StartupError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    raise SystemExit(code)


if __name__ == "__main__":
    main()
