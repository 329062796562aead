"""Agent-card routes: the card both versions read unless a version is named; ETag, Last-Modified, max-age."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.protocol.card import CardForm, RenderedCard, card_form, render
from a2a_gateway.protocol.card_translate import agent_card_to_v0_3
from a2a_gateway.protocol.version import HEADER

Clock = Callable[[], datetime]


def asked_form(request: Request) -> CardForm:
    """The card form a request asks for: ``A2A-Version`` as query parameter or header (the query wins)."""
    return card_form(request.query_params.get(HEADER) or request.headers.get(HEADER))


def whole_seconds(instant: datetime) -> datetime:
    """An instant at HTTP-date resolution (whole seconds, UTC)."""
    return instant.astimezone(UTC).replace(microsecond=0)


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present; else If-Modified-Since, at whole seconds."""
    tags = request.headers.get("if-none-match")
    if tags is not None:
        return tags.strip() == "*" or etag in {t.strip().removeprefix("W/") for t in tags.split(",")}
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    date = _http_date(since)  # an invalid date is ignored, as the RFC asks
    return date is not None and whole_seconds(last_modified) <= date


def card_response(
    request: Request, rendered: RenderedCard, cache_control: str, last_modified: datetime
) -> Response:
    """The card bytes with ETag, Last-Modified and Cache-Control, or 304 when the client's copy is current."""
    headers = {
        "ETag": rendered.etag,
        "Last-Modified": format_datetime(whole_seconds(last_modified), usegmt=True),
        "Cache-Control": cache_control,
        "Vary": HEADER,
    }
    if _not_modified(request, rendered.etag, last_modified):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)


class FirstServed:
    """When this process first served each rendering of a card: its Last-Modified.

    Keyed by the card's owner and the bytes' ETag, so any change of content, whatever caused it, gets a
    later date without the card's sources having to report changes. A restart or a full table starts the
    dates again from now, which is only ever later than the truth, never earlier.
    """

    def __init__(self, clock: Clock = utc_now, capacity: int = 10_000) -> None:
        self._clock = clock
        self._capacity = capacity
        self._since: dict[tuple[str, str], datetime] = {}

    def since(self, owner: str, etag: str) -> datetime:
        """The Last-Modified of these bytes of ``owner``'s card."""
        key = (owner, etag)
        found = self._since.get(key)
        if found is None:
            if len(self._since) >= self._capacity:
                self._since.clear()
            found = self._since[key] = whole_seconds(self._clock())
        return found


class CardEndpoint:
    """Serves one agent's card in every form from pre-rendered bytes, at both well-known paths."""

    def __init__(self, card: v1.AgentCard, max_age: int, clock: Clock = utc_now) -> None:
        self.card = card
        self._rendered = {form: render(card, form) for form in CardForm}
        self._cache_control = f"public, max-age={max_age}"
        self._since = whole_seconds(clock())  # the card is fixed for the life of the process

    async def current(self, request: Request) -> Response:
        """GET /.well-known/agent-card.json: no hint = both versions' fields; ``A2A-Version`` 1.x or 0.3."""
        rendered = self._rendered[asked_form(request)]
        return card_response(request, rendered, self._cache_control, self._since)

    def extended_v1(self) -> dict[str, Any]:
        """The card for authenticated callers (1.0 form)."""
        return self.card.wire()

    def extended_v0_3(self) -> dict[str, Any]:
        """The card for authenticated callers (0.3 form)."""
        return agent_card_to_v0_3(self.card).wire()

    async def legacy(self, request: Request) -> Response:
        """GET /.well-known/agent.json (the 0.3-era path): the same answers as the current path."""
        return await self.current(request)
