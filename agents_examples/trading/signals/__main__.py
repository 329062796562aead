"""Run the signal agent: python -m agents_examples.trading.signals --port 9030 --data-dir data/signals
--gateway-url URL.

One process on ``--host`` (127.0.0.1) serves the kit agent (card, JSON-RPC at ``/a2a``) with the skills
``strategy-config`` and ``signal-feed``. It registers with the gateway with the owner key
(``A2A_GATEWAY_GATEWAY_KEY``, as every kit agent) and makes every call through the gateway with that
key, so the owner pays: the exchange's ``order-updates`` subscription (and ``market-data``) for prices,
and the engine's ``signal-intake`` for each signal, which the engine posts as the owner's. The price
subscription needs an exchange account: ``A2A_SIGNALS_EXCHANGE_KEY`` and ``A2A_SIGNALS_EXCHANGE_SECRET``,
or ``--exchange-url`` to open a sandbox account at start. The strategy flags set the initial config; a
config the owner set later with ``strategy-config`` (kept in the data directory) takes precedence.
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
from agents_examples.trading.engine.exchange_link import ExchangeLink, PriceFeed, WalletKeys
from agents_examples.trading.engine.sandbox import SandboxAccounts
from agents_examples.trading.gateway_client import GatewayClient
from agents_examples.trading.signals.agent import FeedAccount, Owner, create_signals_app
from agents_examples.trading.signals.service import (
    INTAKE_TIMEOUT_SECONDS,
    ConfigStore,
    EngineIntake,
    SignalService,
)
from agents_examples.trading.signals.strategy import ConfigError, Strategy, StrategyConfig

KEY_ENV = "A2A_SIGNALS_EXCHANGE_KEY"
SECRET_ENV = "A2A_SIGNALS_EXCHANGE_SECRET"  # noqa: S105 (the variable's name, not a secret)
CONFIG_FILE = "strategy-config.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents_examples.trading.signals",
        description="Serve the signal agent: a moving-average crossover on the exchange's prices, its "
        "signals sent to the trading engine, all through the gateway.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9030, help="port to listen on")
    parser.add_argument("--data-dir", default="data/signals", help="the agent's tasks and stored config")
    parser.add_argument("--log-level", default="warning", help="root log level")
    parser.add_argument("--gateway-url", required=True, help="the gateway to register with and call through")
    parser.add_argument(
        "--engine-agent-id", default=None, help="the engine's agent id at the gateway (default: discovered)"
    )
    parser.add_argument(
        "--exchange-agent-id",
        default=None,
        help="the exchange's agent id at the gateway (default: discovered)",
    )
    parser.add_argument(
        "--exchange-url",
        default=None,
        help=f"the exchange's base URL, to open a sandbox account for the prices (else {KEY_ENV} and "
        f"{SECRET_ENV})",
    )
    defaults = StrategyConfig()
    parser.add_argument(
        "--fast", type=int, default=defaults.fast_window, help="the fast moving average's bars"
    )
    parser.add_argument(
        "--slow", type=int, default=defaults.slow_window, help="the slow moving average's bars"
    )
    parser.add_argument(
        "--volume-factor",
        default=str(defaults.volume_factor),
        help="a cross needs the bar's volume at least this times the slow window's mean (0: off)",
    )
    parser.add_argument(
        "--cooldown", type=int, default=defaults.cooldown_bars, help="bars without a signal after one"
    )
    parser.add_argument("--symbols", default="", help="comma-separated instruments to follow (default: all)")
    parser.add_argument(
        "--min-strength", type=int, default=defaults.min_strength, help="weakest signal sent (1-5)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="signals sent to the engine at once")
    parser.add_argument("--log-size", type=int, default=100, help="emitted signals kept with their outcome")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve the signal agent (one process per data directory)."""
    parser = _parser()
    args = parser.parse_args(argv)
    flags = {
        "fastWindow": args.fast,
        "slowWindow": args.slow,
        "volumeFactor": args.volume_factor,
        "cooldownBars": args.cooldown,
        "symbols": [s for s in args.symbols.split(",") if s.strip()],
        "minStrength": args.min_strength,
    }
    try:
        initial = StrategyConfig.from_doc(flags)
    except ConfigError as error:
        parser.error(f"invalid strategy: {error}")
    if args.concurrency < 1 or args.log_size < 1:
        parser.error("--concurrency and --log-size must be at least 1")
    env_key, env_secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
    if bool(env_key) != bool(env_secret):
        parser.error(f"set both {KEY_ENV} and {SECRET_ENV}, or neither")
    if not env_key and not args.exchange_url:
        parser.error(
            f"the price feed needs an exchange account: --exchange-url, or {KEY_ENV} and {SECRET_ENV}"
        )
    settings = Settings(
        data_dir=args.data_dir,
        public_url=f"http://{args.host}:{args.port}",
        log_level=args.log_level.upper(),
        gateway_url=args.gateway_url,
    )
    log.configure(settings.log_level, settings.log_json)
    owner_key = settings.gateway_key.get_secret_value() if settings.gateway_key is not None else None

    def build() -> Starlette:
        client = httpx.AsyncClient(
            transport=GuardedTransport(SsrfGuard(settings.outbound_allowlist)),
            timeout=httpx.Timeout(settings.outbound_timeout_seconds),
            follow_redirects=False,
        )
        gateway_url = args.gateway_url
        store = ConfigStore(Path(args.data_dir) / CONFIG_FILE)
        intake = EngineIntake(
            GatewayClient(client, gateway_url, lambda: owner_key, timeout=INTAKE_TIMEOUT_SECONDS),
            args.engine_agent_id,
        )
        service = SignalService(
            Strategy(store.load() or initial),
            intake,
            store=store,
            concurrency=args.concurrency,
            log_size=args.log_size,
        )
        if env_key and env_secret:
            account = FeedAccount(WalletKeys(env_key, env_secret))
        else:
            account = FeedAccount(opener=SandboxAccounts(client, args.exchange_url))
        link = ExchangeLink(client, gateway_url, lambda: owner_key, exchange_agent_id=args.exchange_agent_id)
        feed = PriceFeed(link, account.keys, service.on_ticks)
        owner = Owner(GatewayClient(client, gateway_url, lambda: owner_key))
        return create_signals_app(service, settings, owner=owner, feed=feed, account=account)

    try:
        serve(build, settings, args.host, args.port)
    except StartupError as error:
        print(f"signal agent: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
