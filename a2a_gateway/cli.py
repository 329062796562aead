"""Command line: serve, db upgrade, users create. (The demo lives with the examples: agents_examples.demo.)"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from importlib import metadata

from pydantic import ValidationError
from pydantic_settings import SettingsError

from a2a_gateway import log
from a2a_gateway.errors import GatewayError
from a2a_gateway.server import StartupError, serve
from a2a_gateway.settings import Settings


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def _version() -> str:
    try:
        return metadata.version("a2a-gateway")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _serve(settings: Settings, host: str, port: int) -> None:
    from a2a_gateway.app import create_gateway_app

    log.configure(settings.log_level, settings.log_json)
    try:
        serve(lambda: create_gateway_app(settings), settings, host, port)
    except StartupError as error:
        print(f"a2a-gateway: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


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


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """The ``a2a-gateway`` argument parser; defaults shown in help are the effective ones (env included)."""
    parser = argparse.ArgumentParser(
        prog="a2a-gateway", description="A2A agent-network gateway", formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_cmd = sub.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway (one process per data directory).",
        formatter_class=HelpFormatter,
    )
    serve_cmd.add_argument("--host", default=settings.host, help="address to listen on (A2A_GATEWAY_HOST)")
    serve_cmd.add_argument(
        "--port", type=int, default=settings.port, help="port to listen on (A2A_GATEWAY_PORT)"
    )
    dbp = sub.add_parser(
        "db", help="database commands", description="Database commands.", formatter_class=HelpFormatter
    )
    dbp.add_argument("action", choices=["upgrade"], help="upgrade: apply every migration not yet applied")
    users = sub.add_parser(
        "users", help="user accounts", description="User accounts.", formatter_class=HelpFormatter
    )
    users_sub = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = users_sub.add_parser(
        "create",
        help="create a user (for operators)",
        description="Create a user account.",
        formatter_class=HelpFormatter,
    )
    create.add_argument("--email", required=True, help="the user's email address (their login)")
    create.add_argument(
        "--password", default=None, help="the password; omit to be prompted (keeps it out of shell history)"
    )
    return parser


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:  # name the variable and the problem, never echo the value
        first = error.errors()[0]
        name = "A2A_GATEWAY_" + "_".join(str(part) for part in first["loc"][:1]).upper()
        print(f"a2a-gateway: error: invalid setting {name}: {first['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as error:  # a list or object variable that is not JSON
        print(f"a2a-gateway: error: invalid setting: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``a2a-gateway`` command."""
    settings = _load_settings()
    args = build_parser(settings).parse_args(argv)
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
    overrides: dict[str, object] = {"host": args.host, "port": args.port}
    if "A2A_GATEWAY_PUBLIC_URL" not in os.environ:
        overrides["public_url"] = f"http://{args.host}:{args.port}"
    _serve(settings.model_copy(update=overrides), args.host, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
