"""The fan-out benchmark's streaming agent: a kit agent whose ``ticker`` skill emits one event a period.

Run: python -m benchmarks.fanout_agent --port PORT --data-dir DIR

A ``ticker`` task's message text is ``COUNT PERIOD [DELAY]`` (for instance ``60 1 30``): it goes to
WORKING, waits DELAY seconds (0 by default), then appends COUNT data chunks to one artifact (``tick``),
one every PERIOD seconds on a fixed schedule (a late tick does not push the next ones back), and
completes. Each chunk is
``{"n": i, "t": <wall clock when it was made>}``, ``i`` from 1: a subscriber on the same machine
measures delivery from ``t`` and finds gaps from ``n``. No gateway registration: the benchmark's
operator registers it by its card URL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncGenerator

from a2a_gateway import log
from a2a_gateway.agent import AgentDefinition, AgentEvent, ArtifactChunk, SkillContext, Status, skill
from a2a_gateway.app import create_agent_app
from a2a_gateway.protocol import v1
from a2a_gateway.server import StartupError, serve
from a2a_gateway.settings import Settings

MAX_TICKS = 3600
MIN_PERIOD = 0.01
MAX_PERIOD = 60.0
MAX_DELAY = 600.0


def parse_order(text: str) -> tuple[int, float, float] | None:
    """``COUNT PERIOD [DELAY]`` from a message text, or None when it is not one (or out of bounds)."""
    fields = text.split()
    if len(fields) not in (2, 3):
        return None
    try:
        count, period = int(fields[0]), float(fields[1])
        delay = float(fields[2]) if len(fields) == 3 else 0.0
    except ValueError:
        return None
    if not 1 <= count <= MAX_TICKS or not MIN_PERIOD <= period <= MAX_PERIOD or not 0 <= delay <= MAX_DELAY:
        return None
    return count, period, delay


@skill(
    "ticker",
    "Ticker",
    "Streams COUNT timestamped chunks, one every PERIOD seconds after DELAY (text: 'COUNT PERIOD [DELAY]').",
    tags=["stream", "benchmark"],
    examples=["60 1 30"],
)
async def ticker(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    """One ``{"n", "t"}`` chunk a period, on a schedule fixed at the start."""
    order = parse_order(ctx.text)
    if order is None:
        yield Status(v1.TaskState.REJECTED, f"send 'COUNT PERIOD [DELAY]', COUNT 1..{MAX_TICKS}")
        return
    count, period, delay = order
    yield Status(v1.TaskState.WORKING, f"ticking {count} times")
    start = time.monotonic() + delay
    for n in range(1, count + 1):
        await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))
        yield ArtifactChunk.of_data(
            {"n": n, "t": time.time()}, name="tick", artifact_id="tick", append=n > 1, last_chunk=n == count
        )


TICKER_AGENT = AgentDefinition(
    name="Fan-out Ticker",
    description="Benchmark agent: streams timestamped chunks at a fixed pace.",
    skills=[ticker],
    version="1.0.0",
)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve the ticker agent."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout_agent", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--data-dir", required=True, help="the agent's own database")
    parser.add_argument("--log-level", default="warning", help="root log level")
    args = parser.parse_args(argv)
    settings = Settings(
        data_dir=args.data_dir,
        public_url=f"http://{args.host}:{args.port}",
        log_level=args.log_level.upper(),
    )
    log.configure(settings.log_level, settings.log_json)
    try:
        serve(lambda: create_agent_app(TICKER_AGENT, settings), settings, args.host, args.port)
    except StartupError as error:
        print(f"fanout agent: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
