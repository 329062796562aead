"""``/trading-signals``: signals the caller published, and the executions they led to.

- ``POST /trading-signals`` (a login session or an API key; at most :data:`SIGNALS_PER_MINUTE` a minute
  per credential, else 429 ``RATE_LIMITED`` with ``Retry-After``): the body is Nexgent's signal
  (``tokenAddress``, ``symbol``, ``signalType``, ``signalStrength``, ``activationReason``, ``source``;
  the seed's ``action`` and ``score`` are accepted too). A body that is not one is 400
  ``INVALID_SIGNAL`` with ``field`` and ``errors``; the same signal again within 60 s is 409
  ``SIGNAL_DUPLICATE``. The answer (201) is the stored signal with ``executions``: one record per
  trading agent that follows the caller, ``SKIPPED`` with its reason at once, or ``PENDING`` while its
  trade goes through the exchange (``GET /trading-signals/{id}`` shows the outcome).
- ``GET /trading-signals`` (newest first, paginated); ``GET /trading-signals/{id}`` with the executions
  of the caller's agents; ``DELETE /trading-signals/{id}`` (``{"success": true}``; the trades it made
  stay). Ids are integers; anything else, or another user's signal, is 404 ``SIGNAL_NOT_FOUND``.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from agents_examples.trading.engine.api.access import Access, Call, Spec
from agents_examples.trading.engine.api.ratelimit import SlidingWindow
from agents_examples.trading.engine.api.responses import error_response, json_response, page_of, read_json
from agents_examples.trading.engine.api.views import signal_view
from agents_examples.trading.engine.domain.signals import SignalError, parse_signal
from agents_examples.trading.engine.errors import not_found
from agents_examples.trading.engine.service import EngineService, signal_error

SIGNALS_PER_MINUTE: Final = 120
MAX_SIGNAL_ID: Final = 2**63 - 1


def signal_id_of(request: Request) -> int:
    """The path's signal id (404 when it is not a positive integer sqlite could hold)."""
    raw = request.path_params["id"]
    if not (0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= MAX_SIGNAL_ID:
        raise not_found("Signal", "SIGNAL_NOT_FOUND")
    return int(raw)


class SignalRoutes:
    """The signal routes over one service, with the posting budget ``limiter``."""

    def __init__(self, service: EngineService, limiter: SlidingWindow) -> None:
        self.service = service
        self.limiter = limiter

    def specs(self) -> list[Spec]:
        """This resource's routes."""
        return [
            Spec("/trading-signals", ("GET",), self.list_signals, Access.READ),
            Spec("/trading-signals", ("POST",), self.post, Access.SIGNALS),
            Spec("/trading-signals/{id}", ("GET",), self.get, Access.READ),
            Spec("/trading-signals/{id}", ("DELETE",), self.delete, Access.SIGNALS),
        ]

    async def list_signals(self, request: Request, call: Call) -> Response:
        page = page_of(request)
        found = self.service.signals(call.user, page.limit, page.offset)
        return json_response([signal_view(d) for d in found])

    async def post(self, request: Request, call: Call) -> Response:
        wait = self.limiter.hit(call.budget_key)
        if wait is not None:
            return error_response(
                429,
                "RATE_LIMITED",
                f"At most {self.limiter.limit} signals a minute per credential; retry in {wait} s",
                {"Retry-After": str(wait), "X-RateLimit-Limit": str(self.limiter.limit)},
                retryAfter=wait,
            )
        body = await read_json(request)
        try:
            signal = parse_signal(body)
        except SignalError as error:
            raise signal_error(error) from None
        doc, executions = self.service.post_signal(call.user, signal)
        return json_response({**signal_view(doc), "executions": [e.view() for e in executions]}, 201)

    async def get(self, request: Request, call: Call) -> Response:
        doc, executions = self.service.signal(call.user, signal_id_of(request))
        return json_response({**signal_view(doc), "executions": [e.view() for e in executions]})

    async def delete(self, request: Request, call: Call) -> Response:
        self.service.delete_signal(call.user, signal_id_of(request))
        return json_response({"success": True})
