"""Command line: serve, demo (the gateway with its example network), db upgrade, users."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import subprocess
import sys

import uvicorn

from a2a_gateway import log
from a2a_gateway.errors import GatewayError
from a2a_gateway.settings import Settings

DEMO_HELP = """
A2A gateway is running at {url}

  Agent card (1.0):  curl -s {url}/.well-known/agent-card.json
  SendMessage (1.0): curl -s {url}/a2a -H 'A2A-Version: 1.0' -H 'Content-Type: application/json' \\
    -d '{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"message":{{"messageId":"m1","role":"ROLE_USER","parts":[{{"text":"hello"}}]}}}}}}'
  message/send (0.3): curl -s {url}/a2a -H 'Content-Type: application/json' \\
    -d '{{"jsonrpc":"2.0","id":1,"method":"message/send","params":{{"message":{{"kind":"message","messageId":"m2","role":"user","parts":[{{"kind":"text","text":"hello"}}]}}}}}}'
  Stream a countdown: curl -sN {url}/a2a -H 'A2A-Version: 1.0' -H 'Content-Type: application/json' \\
    -d '{{"jsonrpc":"2.0","id":2,"method":"SendStreamingMessage","params":{{"message":{{"messageId":"m3","role":"ROLE_USER","parts":[{{"text":"5"}}]}},"metadata":{{"skillId":"countdown"}}}}}}'

The example network: the echo agent runs as its own process at {agent_url}, registers itself with
the gateway (owner {email}, password in {password_file}) and sends heartbeats.

  Discover it:       curl -s '{url}/api/v1/discover?skillTags=stream'
  Route by skill tag (the chosen agent is in the task's metadata.agentId):
                     curl -s {url}/a2a -H 'A2A-Version: 1.0' -H 'Content-Type: application/json' \\
    -d '{{"jsonrpc":"2.0","id":3,"method":"SendMessage","params":{{"message":{{"messageId":"m4","role":"ROLE_USER","parts":[{{"text":"routed"}}]}},"metadata":{{"skillTags":"test"}}}}}}'
  Its proxy and card: {url}/a2a/agents/<agentId>  and  {url}/a2a/agents/<agentId>/.well-known/agent-card.json

Press Ctrl+C to stop.
"""
DEMO_EMAIL = "demo@example.com"


def _serve(settings: Settings, host: str, port: int) -> None:
    from a2a_gateway.app import create_gateway_app

    log.configure(settings.log_level, settings.log_json)
    app = create_gateway_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )


async def _create_user(settings: Settings, email: str, password: str) -> str:
    from a2a_gateway.app import build_auth
    from a2a_gateway.storage import engine as db

    engine = db.create_engine(settings.resolved_database_url())
    try:
        if engine.dialect.name == "sqlite":
            await db.upgrade(engine)
        user = await build_auth(settings, engine).register(email, password)
        return user.id
    finally:
        await engine.dispose()


async def _demo_owner_key(settings: Settings) -> str:
    """The demo owner (created on first run, password kept in the data directory) and a fresh API key
    for the example agents to register themselves with."""
    from a2a_gateway.app import build_auth
    from a2a_gateway.errors import Conflict
    from a2a_gateway.storage import engine as db
    from a2a_gateway.storage.secrets import load_or_create

    password = load_or_create(settings.data_dir, "demo-owner-password").hex()
    engine = db.create_engine(settings.resolved_database_url())
    try:
        if engine.dialect.name == "sqlite":
            await db.upgrade(engine)
        auth = build_auth(settings, engine)
        with contextlib.suppress(Conflict):  # a previous demo run created it
            await auth.register(DEMO_EMAIL, password)
        session = await auth.login(DEMO_EMAIL, password)
        owner = auth.authenticate_access_token(session.access_token)
        issued = await auth.create_key(owner, "demo example agents", ["agents:read", "agents:write"], 1)
        return issued.plaintext
    finally:
        await engine.dispose()


def _start_example_agents(settings: Settings, host: str, port: int) -> subprocess.Popen[bytes]:
    """The echo agent as its own process, registering itself with the gateway at ``settings.public_url``."""
    key = asyncio.run(_demo_owner_key(settings))
    # The child gets only its own settings: none of the gateway's (its database above all).
    env = {k: v for k, v in os.environ.items() if not k.startswith("A2A_GATEWAY_")}
    env |= {
        "A2A_GATEWAY_GATEWAY_KEY": key,
        "A2A_GATEWAY_OUTBOUND_ALLOWLIST": '["127.0.0.1", "::1", "localhost"]',
        "A2A_GATEWAY_HEARTBEAT_SECONDS": "20",
    }
    argv = [sys.executable, "-m", "agents_examples.echo", "--host", host, "--port", str(port),
            "--data-dir", str(settings.data_dir / "echo-agent"), "--gateway-url", settings.public_url]  # fmt: skip
    return subprocess.Popen(argv, env=env)  # noqa: S603  (our own interpreter and module)


def _demo(settings: Settings, host: str, port: int) -> None:
    """The gateway, with the echo agent on the next port registered through it."""
    agent_port = port + 1
    agent = _start_example_agents(settings, host, agent_port)
    try:
        url = settings.public_url.rstrip("/")
        password_file = settings.data_dir / "secrets" / "demo-owner-password"
        print(DEMO_HELP.format(url=url, agent_url=f"http://{host}:{agent_port}", email=DEMO_EMAIL,
                               password_file=password_file), flush=True)  # fmt: skip
        _serve(settings, host, port)
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=10)
        except subprocess.TimeoutExpired:
            agent.kill()


async def _upgrade(settings: Settings) -> str | None:
    from a2a_gateway.storage import engine as db

    engine = db.create_engine(settings.resolved_database_url())
    try:
        await db.upgrade(engine)
        return await db.current_revision(engine)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``a2a-gateway`` command."""
    parser = argparse.ArgumentParser(prog="a2a-gateway", description="A2A agent-network gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run the gateway"), ("demo", "run the gateway with the example network")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--host", default=None)
        cmd.add_argument("--port", type=int, default=None)
    dbp = sub.add_parser("db", help="database commands")
    dbp.add_argument("action", choices=["upgrade"])
    users = sub.add_parser("users", help="user accounts")
    users_sub = users.add_subparsers(dest="action", required=True)
    create = users_sub.add_parser("create", help="create a user (for operators)")
    create.add_argument("--email", required=True)
    create.add_argument(
        "--password", default=None, help="omit to be prompted (keeps it out of shell history)"
    )
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command == "users":
        password = args.password or getpass.getpass("Password: ")
        try:
            user_id = asyncio.run(_create_user(settings, args.email, password))
        except GatewayError as error:
            print(f"error: {error.message}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"created user {user_id} ({args.email.strip().lower()})")
        return
    if args.command == "db":
        revision = asyncio.run(_upgrade(settings))
        print(f"database is at revision {revision}")
        return
    host = args.host or settings.host
    port = args.port or settings.port
    overrides: dict[str, object] = {"host": host, "port": port}
    if "A2A_GATEWAY_PUBLIC_URL" not in os.environ:
        overrides["public_url"] = f"http://{host}:{port}"
    if args.command == "demo":
        # The demo's webhook receivers and agents run on this machine.
        overrides.setdefault("outbound_allowlist", ["127.0.0.1", "::1", "localhost"])
        if "A2A_GATEWAY_HEALTH_CHECK_SECONDS" not in os.environ:
            overrides["health_check_seconds"] = 30.0
        _demo(settings.model_copy(update=overrides), host, port)
        return
    _serve(settings.model_copy(update=overrides), host, port)


if __name__ == "__main__":
    main(sys.argv[1:])
