"""Fetch and validate a remote agent card (0.3 or 1.0) through the guarded outbound client."""

from __future__ import annotations

import httpx
import orjson
from pydantic import ValidationError

from a2a_gateway.errors import InvalidParams, OutboundRefused
from a2a_gateway.protocol import v0_3, v1
from a2a_gateway.protocol.card_translate import agent_card_to_v1

CARD_PATH = "/.well-known/agent-card.json"
MAX_CARD_BYTES = 262_144


def card_location(url: str) -> str:
    """A card URL as given when it names a JSON document, else the well-known path under it."""
    trimmed = url.rstrip("/")
    # The path decides, so a query such as ``?A2A-Version=0.3`` (asking for one card form) is kept.
    path = trimmed.split("#", 1)[0].split("?", 1)[0]
    return trimmed if path.endswith(".json") else trimmed + CARD_PATH


def _refused(why: str) -> InvalidParams:
    return InvalidParams(
        f"Agent card could not be imported: {why}", violations=[{"field": "cardUrl", "description": why}]
    )


class CardFetcher:
    """Implements registry.ports.CardSource with the shared, SSRF-guarded httpx client."""

    def __init__(self, client: httpx.AsyncClient, timeout: float = 10.0) -> None:
        self._client = client
        self._timeout = timeout

    async def fetch(self, url: str) -> v1.AgentCard:
        """The card at ``url``, in its 1.0 form whichever version it was published in."""
        location = card_location(url)
        try:
            httpx.URL(location)
        except (httpx.InvalidURL, TypeError, ValueError):
            # httpx raises these before any transport runs, so the guard never sees such a URL.
            raise _refused("not a valid URL") from None
        try:
            # Asked for and read raw: a compressed card could not grow past the limit inside one chunk.
            identity = {"Accept-Encoding": "identity"}
            async with self._client.stream(
                "GET", location, timeout=self._timeout, headers=identity
            ) as response:
                if response.status_code != 200:
                    raise _refused(f"the server answered HTTP {response.status_code}")
                if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
                    raise _refused("the card was sent compressed although it was asked for uncompressed")
                body = b""
                async for chunk in response.aiter_bytes():  # identity only, so these are the raw bytes
                    body += chunk
                    if len(body) > MAX_CARD_BYTES:
                        raise _refused(f"the card is larger than {MAX_CARD_BYTES} bytes")
        except OutboundRefused as refused:
            raise _refused(refused.message) from None
        except httpx.HTTPError:
            raise _refused("the server could not be reached") from None
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _refused("the card is not JSON") from None
        if not isinstance(doc, dict):
            raise _refused("the card is not a JSON object")
        try:
            if "supportedInterfaces" in doc:
                return v1.AgentCard.model_validate(doc)
            return agent_card_to_v1(v0_3.AgentCard.model_validate(doc))
        except (ValidationError, ValueError):
            raise _refused("the card is not a valid A2A 1.0 or 0.3 agent card") from None
