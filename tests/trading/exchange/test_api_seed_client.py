"""The seed's Python client, unchanged but for BASE_URL, API_KEY and API_SECRET, against a real server:
sandbox (key only, though it signs anyway) and live (signed), printing the BTC line, the portfolio and
the order; the amounts are JSON numbers it can format with :,.2f."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from tests.trading.exchange.api_helpers import in_thread, running_exchange
from tests.trading.exchange.seed_client import run_seed_client


async def test_the_seed_client_works_unchanged_in_sandbox_and_live_mode(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        for mode in ("sandbox", "live"):
            agent = await ex.register(mode)
            assert agent["apiKey"].startswith("nx_test_" if mode == "sandbox" else "nx_live_")
            printed, ns = await in_thread(run_seed_client, ex.url, agent["apiKey"], agent["apiSecret"])
            lines = printed.splitlines()
            price = Decimal(ex.service.simulator.price("BTC")).scaleb(-8)
            assert re.fullmatch(r"BTC: \$[\d,]+\.\d\d \([+-]\d+\.\d\d%\)", lines[0]), lines
            assert lines[0].startswith(f"BTC: ${price:,.2f} (")
            assert lines[1] == "Portfolio: $100,000.00"
            order_id = ns["order"]["order"]["orderId"]
            assert lines[2] == f"Order {order_id}: closed"
            portfolio = ex.service.engine.portfolio(agent["id"])
            assert portfolio["positions"][0]["quantity"] == Decimal("0.01")
            # JSON numbers, not strings
            assert isinstance(ns["btc"]["price"], float) and isinstance(ns["btc"]["change24h"], float)
            assert isinstance(ns["portfolio"]["data"]["totalValue"], int | float)


async def test_the_seed_client_with_a_wrong_secret_is_refused_in_live_mode_only(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        live = await ex.register("live")
        response_error = None
        try:
            await in_thread(run_seed_client, ex.url, live["apiKey"], "not-the-secret")
        except KeyError as error:  # the seed indexes market["data"]; the answer was the error shape
            response_error = error
        assert response_error is not None
        assert ex.service.engine.orders(live["id"]) == []
