"""Health probes, Prometheus metrics, price feeds and data sources of the engine's REST API."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from agents_examples.trading.engine.exchange_link import Tick
from tests.trading.engine.api_support import SOL, START_MS, TKN, FakeExchange, running_engine, session

SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$'
)


def parse_exposition(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition (0.0.4) by ``name{labels}``; every line must be valid and
    every sample's family announced by ``# TYPE`` first."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "summary", "histogram", "untyped"}, line
            assert name not in types, f"{name} announced twice"
            types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match.group(1)
        family = re.sub(r"_(sum|count|bucket)$", "", name) if name not in types else name
        assert family in types, f"{name} has no # TYPE"
        key = name + (match.group(2) or "")
        assert key not in samples, f"{key} twice"
        samples[key] = float(match.group(3))
    return samples


async def test_health_is_healthy_once_the_listings_are_known(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        answer = await engine.client.get("/api/v1/health")
        assert answer.status_code == 200
        health = answer.json()
        assert health["status"] == "healthy" and health["version"] == "9.9.9"
        assert health["timestamp"].endswith("Z") and isinstance(health["uptime"], int | float)
        services = health["services"]
        assert services["database"]["status"] == "up" and isinstance(
            services["database"]["latency"], int | float
        )
        assert services["exchange"] == {"status": "up"} and services["priceFeed"] == {
            "status": "not_configured"
        }
        assert (await engine.client.get("/api/v1/health/live")).json() == {"status": "ok"}
        ready = await engine.client.get("/api/v1/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_health_is_degraded_without_listings_or_feed_and_unhealthy_without_database(
    tmp_path: Path,
) -> None:
    feed = {"configured": True, "connected": False, "lastTickAt": None, "reconnects": 2}
    async with running_engine(tmp_path, listings=False, feed_status=lambda: feed) as engine:
        health = (await engine.client.get("/api/v1/health")).json()
        assert health["status"] == "degraded"
        assert health["services"]["exchange"] == {"status": "down"} and health["services"]["priceFeed"] == {
            "status": "down"
        }
        ready = await engine.client.get("/api/v1/health/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not_ready", "database": True, "listings": False}

        await engine.service.trader.refresh_listings()
        assert (await engine.client.get("/api/v1/health")).json()["status"] == "degraded"  # the feed is down
        feed["connected"] = True
        assert (await engine.client.get("/api/v1/health")).json()["status"] == "healthy"

        engine.service.store.close()
        sick = await engine.client.get("/api/v1/health")
        assert sick.status_code == 503 and sick.json()["status"] == "unhealthy"
        assert sick.json()["services"]["database"]["status"] == "down"
        assert (await engine.client.get("/api/v1/health/ready")).status_code == 503
        assert (await engine.client.get("/api/v1/health/live")).status_code == 200


async def test_metrics_expose_the_trading_and_http_counters(tmp_path: Path) -> None:
    async with running_engine(tmp_path, websocket_connections=lambda: 7) as engine:
        agent = await engine.funded_agent()
        await engine.signal()
        await engine.service.trader.drain()
        [position] = (await engine.client.get("/api/v1/agent-positions", headers=session("ann"))).json()
        await engine.client.post(f"/api/v1/agent-positions/{position['id']}/close", headers=session("ann"))
        await engine.client.get("/api/v1/agents/nope", headers=session("ann"))
        await engine.service.trader.on_ticks([Tick("TKN", TKN, Decimal("2.1"), START_MS + 60_000)])

        answer = await engine.client.get("/api/v1/metrics", headers=session("ann"))
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = parse_exposition(answer.text)
        assert samples["signal_processing_latency_seconds_count"] == 1
        assert samples["signal_processing_latency_seconds_sum"] >= 0
        trades = {k: v for k, v in samples.items() if k.startswith("trade_execution_total{")}
        # The buy and the manual sell, each counted once on its own side.
        assert trades == {
            'trade_execution_total{side="buy",status="EXECUTED"}': 1,
            'trade_execution_total{side="sell",status="EXECUTED"}': 1,
        }
        assert samples["manual_close_total"] == 1 and samples["stop_loss_trigger_total"] == 0
        for name in ("take_profit_trigger_total", "stale_trade_trigger_total", "signal_sell_total"):
            assert samples[name] == 0
        assert samples["price_ticks_total"] == 1 and samples["risk_limit_breach_total"] == 0
        assert samples["websocket_connections"] == 7 and samples["trading_agents"] == 1
        assert samples['api_requests_total{method="POST",status="201"}'] >= 3  # agent, wallet, signal
        assert samples['api_requests_total{method="GET",status="404"}'] == 1
        assert samples['errors_total{status="404"}'] == 1
        assert agent["id"] not in answer.text


async def test_price_feeds_list_every_listed_token(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        feeds = (await engine.client.get("/api/v1/price-feeds", headers=session("ann"))).json()
        assert [f["symbol"] for f in feeds] == ["BONK", "SOL", "TKN"]
        sol = next(f for f in feeds if f["symbol"] == "SOL")
        assert sol == {
            "tokenAddress": SOL,
            "symbol": "SOL",
            "price": 150,
            "priceUsd": 150,
            "lastUpdated": None,
            "source": "paper-exchange",
        }
        await engine.service.trader.on_ticks([Tick("TKN", TKN, Decimal("2.25"), START_MS)])
        feeds = (
            await engine.client.get("/api/v1/price-feeds?limit=1&offset=2", headers=session("ann"))
        ).json()
        assert feeds == [
            {
                "tokenAddress": TKN,
                "symbol": "TKN",
                "price": 2.25,
                "priceUsd": 2.25,
                "lastUpdated": "2026-01-01T00:00:00.000Z",
                "source": "paper-exchange",
            }
        ]


async def test_the_sol_price_is_an_eight_decimal_string_stale_until_a_recent_tick(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        path = "/api/v1/price-feeds/sol-usd"
        before = (await engine.client.get(path, headers=session("ann"))).json()
        assert before == {
            "price": "150.00000000",
            "lastUpdated": None,
            "isStale": True,
            "source": "paper-exchange",
        }
        await engine.service.trader.on_ticks([Tick("SOL", SOL, Decimal("151.123456789"), START_MS)])
        fresh = (await engine.client.get(path, headers=session("ann"))).json()
        assert fresh["price"] == "151.12345679" and fresh["isStale"] is False
        assert fresh["lastUpdated"] == "2026-01-01T00:00:00.000Z"
        await engine.service.trader.on_ticks([Tick("TKN", TKN, Decimal("2"), START_MS + 31_000)])
        assert (await engine.client.get(path, headers=session("ann"))).json()["isStale"] is True


async def test_no_sol_listing_means_no_sol_price(tmp_path: Path) -> None:
    exchange = FakeExchange(prices={"TKN": Decimal("2")})
    async with running_engine(tmp_path, exchange=exchange) as engine:
        answer = await engine.client.get("/api/v1/price-feeds/sol-usd", headers=session("ann"))
        assert answer.status_code == 404
        assert answer.json() == {"error": "The exchange lists no SOL price", "code": "PRICE_NOT_AVAILABLE"}


async def test_data_sources_report_what_the_engine_is_connected_to(tmp_path: Path) -> None:
    feed: dict[str, Any] = {"configured": True, "connected": True, "lastTickAt": START_MS, "reconnects": 3}
    async with running_engine(tmp_path, feed_status=lambda: feed) as engine:
        status = (await engine.client.get("/api/v1/data-sources/status", headers=session("ann"))).json()
        assert status == {
            "paperExchange": {"configured": True, "connected": True},
            "gateway": {"configured": False},
            "priceStream": {
                "configured": True,
                "connected": True,
                "lastTickAt": "2026-01-01T00:00:00.000Z",
                "reconnects": 3,
            },
            "signalGeneration": {"configured": True},
        }
        sources = (await engine.client.get("/api/v1/data-sources", headers=session("ann"))).json()
        assert [s["id"] for s in sources] == ["paperExchange", "gateway", "priceStream", "signalGeneration"]
        assert all(isinstance(s["name"], str) and isinstance(s["configured"], bool) for s in sources)


async def test_metrics_label_trades_by_side_and_outcome(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        counters = engine.service.trader.counters
        for side, status in [
            ("buy", "EXECUTED"),
            ("buy", "EXECUTED"),
            ("buy", "FAILED"),
            ("sell", "EXECUTED"),
        ]:
            counters.trade(side, status)
        counters.exits.update(
            {"stop_loss": 2, "take_profit": 3, "stale_trade": 4, "signal": 5, "risk_limit": 6}
        )
        counters.risk_breaches = 1
        samples = parse_exposition((await engine.client.get("/api/v1/metrics", headers=session("ann"))).text)
        assert samples['trade_execution_total{side="buy",status="EXECUTED"}'] == 2
        assert samples['trade_execution_total{side="buy",status="FAILED"}'] == 1
        assert samples['trade_execution_total{side="sell",status="EXECUTED"}'] == 1
        assert samples["stop_loss_trigger_total"] == 2 and samples["take_profit_trigger_total"] == 3
        assert samples["stale_trade_trigger_total"] == 4 and samples["signal_sell_total"] == 5
        assert samples["risk_limit_close_total"] == 6 and samples["risk_limit_breach_total"] == 1
        assert "websocket_connections" not in samples  # no count given
