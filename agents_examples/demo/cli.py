"""The demo's command line: flags, the gateway in this process, the network, the view, a clean stop.

Run: python -m agents_examples.demo [--host 127.0.0.1] [--port 8000] [--duration SECONDS] [--plain]
     python -m agents_examples.demo --agents-only --gateway-url URL [--host H] [--port P]

The gateway listens on ``--port`` and the agents on the next four ports (echo, exchange, engine, signal
agent). Every port is checked before anything starts, and each process locks its own data directory,
so a second demo on the same data stops with a clear error instead of sharing the database. The agents
die with the demo however it ends (kill -9 included). The banner is printed once the whole network is
up, and the database is left in place for inspection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import uvloop

from a2a_gateway import log
from a2a_gateway.app import create_gateway_app
from a2a_gateway.billing.service import BillingService
from a2a_gateway.cli import HelpFormatter
from a2a_gateway.server import AppServer, StartupError, listen, lock_data_dir, stop_signals
from a2a_gateway.settings import Settings
from agents_examples.demo.accounts import SetupFailed
from agents_examples.demo.banner import banner
from agents_examples.demo.children import AgentStopped, stop_all
from agents_examples.demo.network import DEMO_CREDITS, PORTS, Grant, Launcher, Network
from agents_examples.demo.view import run_view

LOOPBACK: Final = ["127.0.0.1", "::1", "localhost"]


def _error(text: str) -> None:
    """A one-line error on the terminal's stderr (even while the gateway's log takes sys.stderr)."""
    print(f"demo: error: {text}", file=sys.__stderr__ or sys.stderr, flush=True)


def demo_settings(host: str, port: int) -> Settings:
    """The gateway's settings from the environment, with what the demo needs on one machine."""
    settings = Settings()
    overrides: dict[str, object] = {"host": host, "port": port}
    if "A2A_GATEWAY_PUBLIC_URL" not in os.environ:
        overrides["public_url"] = f"http://{host}:{port}"
    if "A2A_GATEWAY_OUTBOUND_ALLOWLIST" not in os.environ:
        overrides["outbound_allowlist"] = LOOPBACK  # the agents and any webhook receiver are local
    if "A2A_GATEWAY_HEALTH_CHECK_SECONDS" not in os.environ:
        overrides["health_check_seconds"] = 30.0
    return settings.model_copy(update=overrides)


def top_up(billing: BillingService) -> Grant:
    """A grant function bringing a user's available credits up to the amount asked."""

    async def grant(user_id: str, amount: int) -> None:
        available = (await billing.balance(user_id)).available
        if available < amount:
            await billing.grant(user_id, amount - available, "demo credits")

    return grant


async def run_network(
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    host: str,
    port: int,
    stop: asyncio.Event,
    duration: float | None,
    plain: bool,
    billing: BillingService | None,
) -> int:
    """Bring the network up, show it until stopped, and stop the agents; the exit code."""
    grant = top_up(billing) if billing is not None else None
    launcher = Launcher(client, settings.data_dir, host, port, stopped=stop, grant=grant)
    try:
        try:
            network = await launcher.launch()
        except asyncio.CancelledError:
            if stop.is_set():
                return 0
            raise
        print(
            banner(network, settings.data_dir, duration, credits=DEMO_CREDITS if billing else None),
            flush=True,
        )
        return await run_view(client, network, stop, duration, plain=plain)
    except (SetupFailed, AgentStopped) as error:
        _error(str(error))
        return 1
    finally:
        if launcher.network is not None:
            await stop_all(launcher.network.children)


async def run(settings: Settings, sock: socket.socket | None, args: argparse.Namespace) -> int:
    """The demo until Ctrl+C, SIGTERM or ``--duration``; the exit code."""
    gateway: AppServer | None = None

    def force() -> None:
        if gateway is not None:
            gateway.stop(force=True)

    with stop_signals(force) as stop, _gateway_log(settings, sock is not None):
        billing = None
        if sock is not None:
            app = create_gateway_app(settings)
            gateway = AppServer(app, settings, sock)
            await gateway.start()
            billing = app.state.billing
            url = settings.public_url.rstrip("/")
        else:
            url = args.gateway_url.rstrip("/")
        try:
            async with httpx.AsyncClient(base_url=url, timeout=15) as client:
                return await run_network(
                    client, settings=settings, host=args.host, port=args.port, stop=stop,
                    duration=args.duration,
                    plain=args.plain or not sys.stdout.isatty(), billing=billing,
                )  # fmt: skip
        except httpx.HTTPError as error:
            _error(f"the gateway at {url} cannot be reached ({type(error).__name__})")
            return 1
        finally:
            if gateway is not None:
                gateway.stop()
                await gateway.wait()


@contextlib.contextmanager
def _gateway_log(settings: Settings, ours: bool) -> Iterator[None]:
    """With the gateway in this process, its log (and uvicorn's, and any warning) goes to
    ``logs/gateway.log`` in the data directory, so the terminal is the view's; the demo's own errors go
    to the real stderr."""
    if not ours:
        yield
        return
    folder = Path(settings.data_dir) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "gateway.log").open("a", encoding="utf-8") as file, contextlib.redirect_stderr(file):
        log.configure(settings.log_level, settings.log_json)
        try:
            yield
        finally:
            file.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents_examples.demo",
        description="Run the gateway with the example trading network, every agent its own process.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address the gateway and the agents listen on")
    parser.add_argument(
        "--port", type=int, default=8000, help="the gateway's port; the agents take the next four"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop cleanly this many seconds after start-up; unset: run until Ctrl+C",
    )
    parser.add_argument(
        "--plain", action="store_true", help="print events line by line (the default when not a terminal)"
    )
    parser.add_argument(
        "--agents-only",
        action="store_true",
        help="run only the agents, against the gateway at --gateway-url (which grants no demo credits)",
    )
    parser.add_argument("--gateway-url", default=None, help="with --agents-only: the gateway to use")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the demo; a reason on one line and exit code 1 when it cannot start."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.agents_only != bool(args.gateway_url):
        parser.error("--agents-only and --gateway-url go together")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    settings = demo_settings(args.host, args.port)
    log.configure(settings.log_level, settings.log_json)
    try:
        with lock_data_dir(Path(settings.data_dir)):
            sock = None if args.agents_only else listen(args.host, args.port)
            for offset in PORTS.values():  # the agents' ports: say now if one is taken
                listen(args.host, args.port + offset).close()
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                try:
                    code = runner.run(run(settings, sock, args))
                finally:
                    if sock is not None:
                        sock.close()
    except StartupError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    raise SystemExit(code)


__all__ = ["Network", "main"]
