"""Agent-card routes: 1.0 by default, 0.3 on request or at the legacy path; ETag and max-age."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.protocol import v1
from a2a_gateway.protocol.card import RenderedCard, render
from a2a_gateway.protocol.card_translate import agent_card_to_v0_3
from a2a_gateway.protocol.version import HEADER, ProtocolVersion, negotiate


def asked_version(request: Request) -> ProtocolVersion:
    """The card version a request asks for (query or header); 1.0 when none or unknown."""
    asked = request.query_params.get(HEADER) or request.headers.get(HEADER)
    if not asked:
        return ProtocolVersion.V1_0
    try:
        return negotiate(asked)
    except Exception:
        return ProtocolVersion.V1_0


def card_response(request: Request, rendered: RenderedCard, cache_control: str) -> Response:
    """The card bytes with ETag and Cache-Control, or 304 when the client's copy is current."""
    headers = {"ETag": rendered.etag, "Cache-Control": cache_control, "Vary": HEADER}
    tags = request.headers.get("if-none-match", "")
    if rendered.etag in {t.strip().removeprefix("W/") for t in tags.split(",")} or tags.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)


class CardEndpoint:
    """Serves one agent's card in both protocol versions from pre-rendered bytes."""

    def __init__(self, card: v1.AgentCard, max_age: int) -> None:
        self.card = card
        self._rendered = {v: render(card, v) for v in ProtocolVersion}
        self._cache_control = f"public, max-age={max_age}"

    async def current(self, request: Request) -> Response:
        """GET /.well-known/agent-card.json (1.0; ``?A2A-Version=0.3`` gives 0.3)."""
        return card_response(request, self._rendered[asked_version(request)], self._cache_control)

    def extended_v1(self) -> dict[str, Any]:
        """The card for authenticated callers (1.0 form)."""
        return self.card.wire()

    def extended_v0_3(self) -> dict[str, Any]:
        """The card for authenticated callers (0.3 form)."""
        return agent_card_to_v0_3(self.card).wire()

    async def legacy(self, request: Request) -> Response:
        """GET /.well-known/agent.json (0.3 form for older clients)."""
        return card_response(request, self._rendered[ProtocolVersion.V0_3], self._cache_control)
