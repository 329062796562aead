"""Command line: serve, db upgrade, users create, keys list/rotate, credits grant, ledger check.

(The demo lives with the examples: agents_examples.demo.)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
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


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    from a2a_gateway.app import create_gateway_app
    from a2a_gateway.workers import refusal, serve_workers

    if workers > 1 and (reason := refusal(settings)) is not None:
        print(f"a2a-gateway: error: {reason}", file=sys.stderr)
        raise SystemExit(2)
    log.configure(settings.log_level, settings.log_json)
    try:
        if workers > 1:
            status = serve_workers(lambda: create_gateway_app(settings), settings, host, port, workers)
            if status:
                raise SystemExit(status)
        else:
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


async def _keys(settings: Settings, action: str) -> list[str]:
    from datetime import timedelta

    from a2a_gateway.app.building import key_ring
    from a2a_gateway.protocol.base import format_timestamp, utc_now
    from a2a_gateway.storage import engine as db

    engine = db.create_engine(settings.resolved_database_url())
    try:
        if engine.dialect.name == "sqlite":
            await db.upgrade(engine)
        ring = key_ring(settings, engine)
        lines: list[str] = []
        if action == "rotate":
            # The keys being replaced verify for as long as any token they signed may live, plus the
            # interval in which every running process picks the new key up (and a little skew).
            grace = timedelta(
                seconds=max(settings.access_token_ttl_seconds, settings.assertion_ttl_seconds) + 30 + 60
            )
            fresh = await ring.rotate(grace)
            lines.append(
                f"new signing key {fresh.kid}; the previous keys verify until "
                f"{format_timestamp(fresh.created_at + grace)}"
            )
        now = utc_now()
        stored = await ring.keys()
        signing = next((k.kid for k in stored if k.retires_at is None), None)  # the newest unretired
        for key in stored:
            if key.kid == signing:
                state = "signing"
            elif key.retires_at is None or key.retires_at > now:
                until = "" if key.retires_at is None else f" until {format_timestamp(key.retires_at)}"
                state = "verifying" + until
            else:
                state = "retired"
            lines.append(f"{key.kid}  {key.algorithm}  created {format_timestamp(key.created_at)}  {state}")
        return lines
    finally:
        await engine.dispose()


async def _billing(settings: Settings, args: argparse.Namespace) -> tuple[list[str], bool]:
    """Run a credits or ledger command: its printed lines, and whether it succeeded."""
    from a2a_gateway.auth.service import normalize_email
    from a2a_gateway.billing.service import BillingService
    from a2a_gateway.storage import engine as db
    from a2a_gateway.storage.identity_repository import SqlUserRepository
    from a2a_gateway.storage.ledger_repository import SqlLedger

    engine = db.create_engine(settings.resolved_database_url())
    ledger = SqlLedger(engine)
    try:
        if engine.dialect.name == "sqlite":
            await db.upgrade(engine)
        billing = BillingService(ledger, fee_bps=settings.platform_fee_bps)
        if args.command == "ledger":
            report = await billing.check()
            return report.lines(), report.ok
        users = SqlUserRepository(engine)
        who = args.user.strip()
        user = await (users.by_email(normalize_email(who)) if "@" in who else users.by_id(who))
        if user is None:
            return [f"error: no user {who[:100]!r}"], False
        await billing.grant(user.id, args.amount, args.reason)
        balance = await billing.balance(user.id)
        return [f"granted {args.amount} promotional credits to {user.id}; balance {balance.balance}"], True
    finally:
        await ledger.close()
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
        description="Run the gateway: one process, or --workers processes on one listening socket "
        "(those need PostgreSQL and Redis). On SQLite, one gateway per data directory.",
        formatter_class=HelpFormatter,
    )
    serve_cmd.add_argument("--host", default=settings.host, help="address to listen on (A2A_GATEWAY_HOST)")
    serve_cmd.add_argument(
        "--port", type=int, default=settings.port, help="port to listen on (A2A_GATEWAY_PORT)"
    )
    serve_cmd.add_argument(
        "--workers",
        metavar="N",
        type=_worker_count,
        default=settings.workers,
        help="processes accepting on one socket; more than 1 needs PostgreSQL and Redis "
        "(A2A_GATEWAY_WORKERS)",
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
    keys = sub.add_parser(
        "keys",
        help="the signing keys of access tokens and caller assertions",
        description="The key ring that signs access tokens and caller assertions (served at "
        "/.well-known/jwks.json). Rotation makes a new key sign at once; the previous ones keep "
        "verifying until every token they signed has expired.",
        formatter_class=HelpFormatter,
    )
    keys.add_argument("action", choices=["list", "rotate"], help="list: show the keys; rotate: add a new key")
    credits = sub.add_parser(
        "credits", help="credit operations", description="Credit operations.", formatter_class=HelpFormatter
    )
    credits_sub = credits.add_subparsers(dest="action", required=True, metavar="ACTION")
    grant = credits_sub.add_parser(
        "grant",
        help="give a user promotional credits",
        description="Give a user promotional credits: spent like purchased ones, kept apart in the ledger.",
        formatter_class=HelpFormatter,
    )
    grant.add_argument("--user", required=True, help="the user's id or email")
    grant.add_argument("--amount", required=True, type=_positive, help="whole credits, more than 0")
    grant.add_argument("--reason", required=True, help="why (kept with the transfer)")
    ledger = sub.add_parser(
        "ledger", help="the credit ledger", description="The credit ledger.", formatter_class=HelpFormatter
    )
    ledger.add_argument(
        "action",
        choices=["check"],
        help="check: recompute every balance from the transfers and list any violated invariant "
        "(exits 1 on any finding)",
    )
    return parser


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 0 < value <= 1_000_000_000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 1000000000")
    return value


def _worker_count(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 0 < value <= 64:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 64")
    return value


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
    if args.command in ("credits", "ledger"):
        try:
            lines, ok = asyncio.run(_billing(settings, args))
        except GatewayError as error:
            print(f"error: {error.message}", file=sys.stderr)
            raise SystemExit(2) from None
        for line in lines:
            print(line)
        if not ok:
            raise SystemExit(1)
        return
    if args.command == "keys":
        for line in asyncio.run(_keys(settings, args.action)):
            print(line)
        return
    if args.command == "db":
        revision = asyncio.run(_upgrade(settings))
        print(f"database is at revision {revision}")
        return
    overrides: dict[str, object] = {"host": args.host, "port": args.port}
    if "public_url" not in settings.model_fields_set:  # neither in the environment nor in .env
        overrides["public_url"] = f"http://{args.host}:{args.port}"
    _serve(settings.model_copy(update=overrides), args.host, args.port, args.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
