"""Opening a sandbox account at the paper exchange for a new simulation wallet.

Registration is the exchange's public REST route (``POST /v1/agent/register``), not a skill: there is
nothing to pay for and no account to sign with yet. The engine asks only for the permissions it uses:
market data, the portfolio and orders. The call goes through the engine's SSRF-guarded client, and the
answer is read up to a bound.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
import orjson

from agents_examples.trading.engine.exchange_link import ExchangeUnavailable, WalletKeys

PERMISSIONS: Final = ["read:market", "read:portfolio", "write:orders"]
MAX_ANSWER_BYTES: Final = 64 * 1024


class SandboxAccounts:
    """Opens sandbox accounts at the exchange whose REST API is at ``exchange_url``."""

    def __init__(self, client: httpx.AsyncClient, exchange_url: str) -> None:
        self._client = client
        self._url = exchange_url.rstrip("/") + "/v1/agent/register"

    async def __call__(self, label: str) -> WalletKeys:
        """A new sandbox account's keys (ExchangeUnavailable when the exchange does not issue one)."""
        body = {"name": label[:50] or "trading engine", "permissions": PERMISSIONS, "mode": "sandbox"}
        try:
            async with self._client.stream("POST", self._url, json=body) as response:
                raw = b""
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise ExchangeUnavailable("the exchange's registration answer is too large")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise ExchangeUnavailable(f"the exchange could not be reached ({type(exc).__name__})") from None
        if status != 201:
            raise ExchangeUnavailable(f"the exchange refused to open a sandbox account (HTTP {status})")
        try:
            agent: Any = orjson.loads(raw)["agent"]
            return WalletKeys(str(agent["apiKey"]), str(agent["apiSecret"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ExchangeUnavailable("the exchange's registration answer has no keys") from None
