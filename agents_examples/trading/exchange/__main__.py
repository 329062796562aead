"""Run the paper exchange: python -m agents_examples.trading.exchange --port 9010 --data-dir data/exchange.

One process serves the Agent Connect REST API at ``/v1/agent`` and the kit agent (card, JSON-RPC) on
``--host`` (127.0.0.1). Market data is the installed real bars where there are some (``make install``
puts them in place) and a seeded synthetic series otherwise, replayed at ``--bars-per-second``. Live
accounts are issued only to callers sending the operator's token from ``A2A_EXCHANGE_REGISTRATION_TOKEN``
in ``X-NX-Registration-Token``; unset, only sandbox accounts are issued. Webhooks may use ``http`` (and
reach a non-public address) only for the hosts or networks listed, comma-separated, in
``A2A_EXCHANGE_WEBHOOK_ALLOWLIST``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from starlette.applications import Starlette

from a2a_gateway import log
from a2a_gateway.cli import HelpFormatter
from a2a_gateway.server import StartupError, serve
from a2a_gateway.settings import Settings
from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.market.instruments import MAX_EXTRA_INSTRUMENTS, with_synthetic
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore
from agents_examples.trading.exchange.webhooks import WebhookDispatcher

REGISTRATION_TOKEN_ENV = "A2A_EXCHANGE_REGISTRATION_TOKEN"  # noqa: S105 (a variable's name)
WEBHOOK_ALLOWLIST_ENV = "A2A_EXCHANGE_WEBHOOK_ALLOWLIST"


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve the exchange (one process per data directory)."""
    parser = argparse.ArgumentParser(
        prog="python -m agents_examples.trading.exchange",
        description="Serve the paper exchange agent and its Agent Connect REST API.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9010, help="port to listen on")
    parser.add_argument("--data-dir", default="data/exchange", help="the agent's accounts, state and secrets")
    parser.add_argument("--log-level", default="warning", help="root log level")
    parser.add_argument(
        "--gateway-url",
        default=None,
        help="register with this gateway and heartbeat (owner key from A2A_GATEWAY_GATEWAY_KEY); "
        "unset: stay on its own",
    )
    parser.add_argument(
        "--bars-per-second", type=float, default=1.0, help="replay pace (bars of the finest series)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic series (where no real data)"
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="use synthetic data even if real data is installed"
    )
    parser.add_argument(
        "--extra-instruments",
        type=int,
        default=0,
        help=f"list this many more instruments (SYN01, …) on synthetic bars, 0 to {MAX_EXTRA_INSTRUMENTS}",
    )
    args = parser.parse_args(argv)
    if args.bars_per_second <= 0:
        parser.error("--bars-per-second must be positive")
    if not 0 <= args.extra_instruments <= MAX_EXTRA_INSTRUMENTS:
        parser.error(f"--extra-instruments must be 0 to {MAX_EXTRA_INSTRUMENTS}")
    instruments = with_synthetic(args.extra_instruments)
    overrides = {"gateway_url": args.gateway_url} if args.gateway_url else {}
    settings = Settings(
        data_dir=args.data_dir,
        public_url=f"http://{args.host}:{args.port}",
        log_level=args.log_level.upper(),
        **overrides,
    )
    log.configure(settings.log_level, settings.log_json)
    token = os.environ.get(REGISTRATION_TOKEN_ENV) or None
    allowlist = [a for a in os.environ.get(WEBHOOK_ALLOWLIST_ENV, "").split(",") if a.strip()]

    def build() -> Starlette:
        market = load_market_data(instruments, seed=args.seed, use_real=not args.synthetic)
        store = AccountStore(Path(args.data_dir))
        service = ExchangeService(
            store,
            market,
            webhooks=WebhookDispatcher(store, allowlist=allowlist),
            bars_per_second=args.bars_per_second,
            registration_token=token,
            instruments=instruments,
        )
        return create_exchange_app(service, settings)

    try:
        serve(build, settings, args.host, args.port)
    except StartupError as error:
        print(f"exchange agent: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
