"""Operations: health probes, metrics, price feeds and data sources.

- ``GET /health`` (no credential): ``{status, timestamp, uptime, version, services: {database: {status,
  latency}, exchange: {status}, priceFeed: {status}}}``. ``unhealthy`` (503) when the database does not
  answer; ``degraded`` (200) when the exchange's listings are not known yet or a configured price feed
  is disconnected; else ``healthy``. ``latency`` is milliseconds, ``uptime`` seconds.
- ``GET /health/live``: 200 ``{"status": "ok"}`` while the process serves. ``GET /health/ready``: 200
  when the database answers and the listings are known, else 503; both ``{status, database,
  listings}``.
- ``GET /metrics`` (any credential): Prometheus text (:mod:`.metrics`).
- ``GET /price-feeds``: each listed token's latest price (``source`` ``"paper-exchange"``; ``price`` and
  ``priceUsd`` are the same, the quote currency being USD). ``GET /price-feeds/sol-usd``: Nexgent's
  ``{price: "<8 decimals>", lastUpdated, isStale, source}`` from the SOL listing (404
  ``PRICE_NOT_AVAILABLE`` when the exchange lists none); stale when no tick came for it within
  :data:`STALE_MS` simulated ms of the engine's clock, or the price feed is disconnected.
- ``GET /data-sources`` (a list) and ``GET /data-sources/status`` (Nexgent's map of ``{configured}``,
  with the connection states the engine knows).

The price feed's state comes from ``feed_status()``: ``{configured, connected, lastTickAt (simulated
ms), reconnects}``; without one the engine has no feed.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from agents_examples.trading.engine.api.access import Access, Call, Spec
from agents_examples.trading.engine.api.metrics import CONTENT_TYPE, RequestCounts, render
from agents_examples.trading.engine.api.responses import error_response, json_response, page_of
from agents_examples.trading.engine.codec import iso
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.trading import now_iso

log = logging.getLogger(__name__)

SOURCE: Final = "paper-exchange"
STALE_MS: Final = 30_000
SOL: Final = "SOL"

FeedStatus = Callable[[], dict[str, Any]]


def _tick_time(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return iso(value)
    return value if isinstance(value, str) else None


class OperationsRoutes:
    """Health, metrics, prices and data sources of one engine."""

    def __init__(
        self,
        service: EngineService,
        requests: RequestCounts,
        *,
        version: str,
        gateway_configured: bool,
        feed_status: FeedStatus | None = None,
        websocket_connections: Callable[[], int] | None = None,
        monotonic: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.service = service
        self.requests = requests
        self.version = version
        self.gateway_configured = gateway_configured
        self.feed_status = feed_status
        self.websocket_connections = websocket_connections
        self._monotonic = monotonic

    def specs(self) -> list[Spec]:
        """This resource's routes."""
        return [
            Spec("/health", ("GET",), self.health, Access.PUBLIC),
            Spec("/health/live", ("GET",), self.live, Access.PUBLIC),
            Spec("/health/ready", ("GET",), self.ready, Access.PUBLIC),
            Spec("/metrics", ("GET",), self.metrics, Access.READ),
            Spec("/price-feeds", ("GET",), self.price_feeds, Access.READ),
            Spec("/price-feeds/sol-usd", ("GET",), self.sol_usd, Access.READ),
            Spec("/data-sources", ("GET",), self.data_sources, Access.READ),
            Spec("/data-sources/status", ("GET",), self.data_sources_status, Access.READ),
        ]

    # ------------------------------------------------------------------------------ state

    def _feed(self) -> dict[str, Any]:
        state = self.feed_status() if self.feed_status is not None else {}
        return {
            "configured": bool(state.get("configured", self.feed_status is not None)),
            "connected": bool(state.get("connected", False)),
            "lastTickAt": _tick_time(state.get("lastTickAt")),
            "reconnects": int(state.get("reconnects", 0) or 0),
        }

    def _database(self) -> tuple[bool, float]:
        started = self._monotonic()
        try:
            self.service.store.rows("SELECT 1")
        except sqlite3.Error as exc:
            log.warning("database check failed: %s", type(exc).__name__)
            return False, round((self._monotonic() - started) * 1000, 3)
        return True, round((self._monotonic() - started) * 1000, 3)

    def _uptime(self) -> float:
        return max(0.0, self.service.wall() - self.service.started)

    def _listings_known(self) -> bool:
        return bool(self.service.trader.listings)

    # ------------------------------------------------------------------------------ health

    async def health(self, request: Request, call: Call) -> Response:
        database, latency = self._database()
        listings = self._listings_known()
        feed = self._feed()
        feed_state = "up" if feed["connected"] else "down"
        if not feed["configured"]:
            feed_state = "not_configured"
        if not database:
            status = "unhealthy"
        elif not listings or feed_state == "down":
            status = "degraded"
        else:
            status = "healthy"
        doc = {
            "status": status,
            "timestamp": now_iso(self.service.wall),
            "uptime": round(self._uptime(), 3),
            "version": self.version,
            "services": {
                "database": {"status": "up" if database else "down", "latency": latency},
                "exchange": {"status": "up" if listings else "down"},
                "priceFeed": {"status": feed_state},
            },
        }
        return json_response(doc, 503 if status == "unhealthy" else 200)

    async def live(self, request: Request, call: Call) -> Response:
        return json_response({"status": "ok"})

    async def ready(self, request: Request, call: Call) -> Response:
        database, _ = self._database()
        listings = self._listings_known()
        ready = database and listings
        doc = {"status": "ready" if ready else "not_ready", "database": database, "listings": listings}
        return json_response(doc, 200 if ready else 503)

    # ------------------------------------------------------------------------------ metrics

    async def metrics(self, request: Request, call: Call) -> Response:
        trader = self.service.trader
        gauges: dict[str, tuple[str, float]] = {
            "trading_agents": ("Trading agents.", len(trader.agents)),
            "open_positions": ("Open positions.", sum(len(held) for held in trader.positions.values())),
            "position_followers": (
                "Live followers of agents' positions (WebSocket clients and positions-stream tasks).",
                self.service.hub.count,
            ),
            "uptime_seconds": ("Seconds since the engine started.", self._uptime()),
        }
        if self.websocket_connections is not None:
            gauges["websocket_connections"] = ("Open WebSocket connections.", self.websocket_connections())
        text = render(trader.counters, self.requests, gauges=gauges)
        return Response(text, 200, media_type=CONTENT_TYPE)

    # ------------------------------------------------------------------------------ prices

    def _price(self, address: str, listed: Decimal) -> Decimal:
        return self.service.trader.prices.get(address, listed)

    async def price_feeds(self, request: Request, call: Call) -> Response:
        page = page_of(request)
        trader = self.service.trader
        rows = []
        for address, listing in sorted(trader.listings.items(), key=lambda item: item[1].symbol):
            price = self._price(address, listing.price)
            rows.append(
                {
                    "tokenAddress": address,
                    "symbol": listing.symbol,
                    "price": price,
                    "priceUsd": price,
                    "lastUpdated": iso(trader.price_ms.get(address)),
                    "source": SOURCE,
                }
            )
        return json_response(page.of(rows))

    async def sol_usd(self, request: Request, call: Call) -> Response:
        trader = self.service.trader
        listing = trader.listing(SOL)
        if listing is None:
            return error_response(404, "PRICE_NOT_AVAILABLE", "The exchange lists no SOL price")
        address = listing.token_address
        price = self._price(address, listing.price)
        stamp = trader.price_ms.get(address)
        feed = self._feed()
        disconnected = feed["configured"] and not feed["connected"]
        stale = stamp is None or trader.now_ms - stamp > STALE_MS or disconnected
        return json_response(
            {
                "price": f"{price.quantize(Decimal('1e-8')):f}",
                "lastUpdated": iso(stamp),
                "isStale": stale,
                "source": SOURCE,
            }
        )

    # ------------------------------------------------------------------------------ data sources

    def _status(self) -> dict[str, Any]:
        feed = self._feed()
        return {
            "paperExchange": {"configured": True, "connected": self._listings_known()},
            "gateway": {"configured": self.gateway_configured},
            "priceStream": {
                "configured": feed["configured"],
                "connected": feed["connected"],
                "lastTickAt": feed["lastTickAt"],
                "reconnects": feed["reconnects"],
            },
            "signalGeneration": {"configured": True},
        }

    async def data_sources(self, request: Request, call: Call) -> Response:
        status = self._status()
        described = {
            "paperExchange": ("Paper exchange", "Listings, prices and order fills (A2A skills)"),
            "gateway": ("A2A gateway", "Accounts, API keys and routing of the exchange's skills"),
            "priceStream": ("Price stream", "The exchange's order-updates subscription (bar closes)"),
            "signalGeneration": ("Signal intake", "POST /trading-signals and the signal-intake skill"),
        }
        return json_response(
            [
                {"id": key, "name": name, "description": text, **status[key]}
                for key, (name, text) in described.items()
            ]
        )

    async def data_sources_status(self, request: Request, call: Call) -> Response:
        return json_response(self._status())
