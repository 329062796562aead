"""Run the trading engine: python -m agents_examples.trading.engine --port 9020 --data-dir data/engine.

One process on ``--host`` (127.0.0.1) serves Nexgent's REST API under ``/api/v1``, the positions
WebSocket at ``/ws`` and the kit agent (card, JSON-RPC at ``/a2a``). With ``--gateway-url`` it registers
with the gateway (owner key from ``A2A_GATEWAY_GATEWAY_KEY``), accepts the gateway's credentials and
trades through it: every order is the exchange's ``place-order`` skill called through the gateway with
the owner's ``nex_`` key (``A2A_ENGINE_CALLER_KEY``, default the owner key), so the owner pays the
exchange's price. ``--exchange-url`` lets ``POST /api/v1/wallets`` open sandbox accounts at the exchange.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx
from starlette.applications import Starlette

from a2a_gateway import log
from a2a_gateway.cli import HelpFormatter
from a2a_gateway.outbound.ssrf import GuardedTransport, SsrfGuard
from a2a_gateway.server import StartupError, serve
from a2a_gateway.settings import Settings
from agents_examples.trading.engine.agent import NoGateway, create_engine_app, deliver, feed_keys
from agents_examples.trading.engine.api.signal_routes import SIGNALS_PER_MINUTE
from agents_examples.trading.engine.domain.signals import DUPLICATE_WINDOW_MS
from agents_examples.trading.engine.exchange_link import ExchangeLink, PriceFeed
from agents_examples.trading.engine.sandbox import SandboxAccounts
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.store import EngineStore

CALLER_KEY_ENV = "A2A_ENGINE_CALLER_KEY"


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve the engine (one process per data directory)."""
    parser = argparse.ArgumentParser(
        prog="python -m agents_examples.trading.engine",
        description="Serve the trading engine agent: Nexgent's REST API, its WebSocket and A2A skills.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9020, help="port to listen on")
    parser.add_argument("--data-dir", default="data/engine", help="the engine's database and secrets")
    parser.add_argument("--log-level", default="warning", help="root log level")
    parser.add_argument(
        "--gateway-url",
        default=None,
        help="the gateway to register with, verify credentials against and trade through; unset: "
        "no trading (orders go only through a gateway)",
    )
    parser.add_argument(
        "--exchange-agent-id",
        default=None,
        help="the exchange's agent id at the gateway (default: discovered)",
    )
    parser.add_argument(
        "--exchange-url",
        default=None,
        help="the exchange's base URL, to open sandbox accounts for new wallets",
    )
    parser.add_argument("--ping-seconds", type=float, default=30.0, help="WebSocket keep-alive interval")
    parser.add_argument("--max-connections", type=int, default=500, help="WebSocket connection cap")
    parser.add_argument(
        "--signals-per-minute",
        type=int,
        default=SIGNALS_PER_MINUTE,
        help="signals one credential may post to the REST API a minute",
    )
    parser.add_argument(
        "--duplicate-window-seconds",
        type=float,
        default=DUPLICATE_WINDOW_MS / 1000,
        help="the same publisher, token, type and strength again within this long is SIGNAL_DUPLICATE "
        "(0: never)",
    )
    args = parser.parse_args(argv)
    if args.ping_seconds <= 0 or args.max_connections < 1:
        parser.error("--ping-seconds must be positive and --max-connections at least 1")
    if args.signals_per_minute < 1 or not 0 <= args.duplicate_window_seconds <= 86_400:
        parser.error("--signals-per-minute must be at least 1 and --duplicate-window-seconds 0 to 86400")
    window_ms = round(args.duplicate_window_seconds * 1000)
    overrides = {"gateway_url": args.gateway_url} if args.gateway_url else {}
    settings = Settings(
        data_dir=args.data_dir,
        public_url=f"http://{args.host}:{args.port}",
        log_level=args.log_level.upper(),
        **overrides,
    )
    log.configure(settings.log_level, settings.log_json)
    owner_key = settings.gateway_key.get_secret_value() if settings.gateway_key is not None else None
    caller_key = os.environ.get(CALLER_KEY_ENV) or owner_key

    def build() -> Starlette:
        client = httpx.AsyncClient(
            transport=GuardedTransport(SsrfGuard(settings.outbound_allowlist)),
            timeout=httpx.Timeout(settings.outbound_timeout_seconds),
            follow_redirects=False,
        )
        sandbox = SandboxAccounts(client, args.exchange_url) if args.exchange_url else None
        store = EngineStore(Path(args.data_dir))
        feed = None
        if settings.gateway_url:
            link = ExchangeLink(
                client, settings.gateway_url, lambda: caller_key, exchange_agent_id=args.exchange_agent_id
            )
            service = EngineService(store, link, sandbox=sandbox, duplicate_window_ms=window_ms)
            feed = PriceFeed(link, feed_keys(service), lambda ticks: deliver(service, ticks))
        else:
            service = EngineService(store, NoGateway(), sandbox=sandbox, duplicate_window_ms=window_ms)
        return create_engine_app(
            service,
            settings,
            feed=feed,
            forwarder_client=client if settings.gateway_url else None,
            ping_seconds=args.ping_seconds,
            max_connections=args.max_connections,
            signals_per_minute=args.signals_per_minute,
        )

    try:
        serve(build, settings, args.host, args.port)
    except StartupError as error:
        print(f"trading engine: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
