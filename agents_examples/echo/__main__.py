"""Run the echo agent on its own: python -m agents_examples.echo --port 9001."""

from __future__ import annotations

import argparse

import uvicorn

from a2a_gateway import log
from a2a_gateway.app import create_agent_app
from a2a_gateway.settings import Settings
from agents_examples.echo import ECHO_AGENT


def main() -> None:
    """Parse arguments and serve the echo agent with uvicorn."""
    parser = argparse.ArgumentParser(description="Serve the echo example agent.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--data-dir", default="data/echo")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--gateway-url",
        default=None,
        help="register with this gateway and heartbeat (owner key from A2A_GATEWAY_GATEWAY_KEY)",
    )
    args = parser.parse_args()
    overrides = {"gateway_url": args.gateway_url} if args.gateway_url else {}
    settings = Settings(
        data_dir=args.data_dir,
        public_url=f"http://{args.host}:{args.port}",
        log_level=args.log_level.upper(),
        **overrides,
    )
    log.configure(settings.log_level, settings.log_json)
    app = create_agent_app(ECHO_AGENT, settings)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                log_level=args.log_level, access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
