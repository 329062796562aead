"""The paper exchange's process for the network benchmark, with its per-key budget lifted.

Run: python -m benchmarks.network_exchange --port PORT --data-dir DIR [--seed 0] [--bars-per-second 1]

The same app as ``python -m agents_examples.trading.exchange --synthetic`` (the exchange's service on
its seeded synthetic series, paced replay, REST API and kit agent in one process), except that the
Agent Connect guard's rate store allows every request: the exchange holds each API key to 60 requests
a minute (``agents_examples/trading/exchange/api/routes.py``, ``RATE_LIMIT``) and its command line
has no flag for it, so with the limit kept each trading agent could place one order a second and the
benchmark would measure the limit. Signatures, nonces and permissions are checked as usual. No
registration token, no webhook allowlist, no gateway registration (the operator registers it by its
card URL).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from starlette.applications import Starlette

from a2a_gateway import log
from a2a_gateway.auth.rate_limit import Decision, Limit, RateLimitStore
from a2a_gateway.server import StartupError, serve
from a2a_gateway.settings import Settings
from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.api.routes import AgentConnectApi
from agents_examples.trading.exchange.market.instruments import with_synthetic
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore
from agents_examples.trading.exchange.webhooks import WebhookDispatcher


class Unlimited(RateLimitStore):
    """Allows every request (module doc)."""

    async def hit(self, key: str, limit: Limit, now: float) -> Decision:
        return Decision(True, limit.count, limit.count - 1, 0.0, 0.0)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve the exchange."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.network_exchange",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--data-dir", required=True, help="the exchange's accounts and state")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic series")
    parser.add_argument("--bars-per-second", type=float, default=1.0, help="replay pace")
    parser.add_argument("--log-level", default="warning", help="root log level")
    parser.add_argument("--extra-instruments", type=int, default=0, help="more instruments on synthetic bars")
    args = parser.parse_args(argv)
    if args.bars_per_second <= 0:
        parser.error("--bars-per-second must be positive")
    settings = Settings(
        data_dir=args.data_dir,
        public_url=f"http://{args.host}:{args.port}",
        log_level=args.log_level.upper(),
    )
    log.configure(settings.log_level, settings.log_json)

    def build() -> Starlette:
        instruments = with_synthetic(args.extra_instruments)
        market = load_market_data(instruments, seed=args.seed, use_real=False)
        store = AccountStore(Path(args.data_dir))
        service = ExchangeService(
            store,
            market,
            webhooks=WebhookDispatcher(store, allowlist=[]),
            bars_per_second=args.bars_per_second,
            instruments=instruments,
        )
        return create_exchange_app(service, settings, api=AgentConnectApi(service, rate_store=Unlimited()))

    try:
        serve(build, settings, args.host, args.port)
    except StartupError as error:
        print(f"exchange (benchmark): error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
