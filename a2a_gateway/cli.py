"""Command line: serve, demo, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
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

Press Ctrl+C to stop.
"""


def _serve(settings: Settings, host: str, port: int, banner: bool) -> None:
    from a2a_gateway.app import create_app
    from agents_examples.echo import ECHO_AGENT

    log.configure(settings.log_level, settings.log_json)
    app = create_app(settings, ECHO_AGENT)
    if banner:
        print(DEMO_HELP.format(url=settings.public_url.rstrip("/")), flush=True)
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
    settings = settings.model_copy(update=overrides)
    _serve(settings, host, port, banner=args.command == "demo")


if __name__ == "__main__":
    main(sys.argv[1:])
