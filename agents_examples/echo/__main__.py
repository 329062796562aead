"""Run the echo agent on its own: python -m agents_examples.echo --port 9001."""

from __future__ import annotations

import argparse
import sys

from a2a_gateway import log
from a2a_gateway.app import create_agent_app
from a2a_gateway.cli import HelpFormatter
from a2a_gateway.server import StartupError, serve
from a2a_gateway.settings import Settings
from agents_examples.echo import ECHO_AGENT


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve the echo agent (one process per data directory)."""
    parser = argparse.ArgumentParser(
        prog="python -m agents_examples.echo",
        description="Serve the echo example agent.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9001, help="port to listen on")
    parser.add_argument("--data-dir", default="data/echo", help="the agent's own database and secrets")
    parser.add_argument("--log-level", default="warning", help="root log level")
    parser.add_argument(
        "--gateway-url",
        default=None,
        help="register with this gateway and heartbeat (owner key from A2A_GATEWAY_GATEWAY_KEY); "
        "unset: stay on its own",
    )
    args = parser.parse_args(argv)
    overrides = {"gateway_url": args.gateway_url} if args.gateway_url else {}
    settings = Settings(
        data_dir=args.data_dir,
        public_url=f"http://{args.host}:{args.port}",
        log_level=args.log_level.upper(),
        **overrides,
    )
    log.configure(settings.log_level, settings.log_json)
    try:
        serve(lambda: create_agent_app(ECHO_AGENT, settings), settings, args.host, args.port)
    except StartupError as error:
        print(f"echo agent: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
