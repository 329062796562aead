"""The benchmark machinery runs end to end: a server subprocess starts, takes load, and is stopped."""

from __future__ import annotations

from benchmarks.jsonrpc_send import running_server, server_specs
from benchmarks.load import probe, run_load


async def test_load_generator_measures_the_ceiling_server() -> None:
    spec = server_specs()["ceiling"]
    with running_server(spec, lifetime=30, startup_timeout=15) as server:
        target = server.target
        status, _ = await probe(target)
        result = await run_load(
            target,
            concurrency=2,
            duration=0.5,
            warmup=0.1,
            max_requests=100_000,
            server_cpu=server.cpu_seconds,
        )
    assert status == 200
    assert result.requests > 0
    assert result.errors == 0
    assert result.server_cpu_s is None or result.server_cpu_s >= 0
