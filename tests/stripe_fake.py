"""A local fake of the two Stripe endpoints the gateway calls, and signed webhook events for its tests.

``FakeStripe.app`` is an ASGI app: ``POST /v1/checkout/sessions`` (form-encoded, Stripe's bracket
notation, unknown or missing parameters refused as Stripe refuses them) and ``GET
/v1/checkout/sessions/{id}``. It checks the bearer key, keeps Stripe's idempotency semantics (same key
and same parameters: the first answer again, marked ``Idempotent-Replayed``; same key and other
parameters: 400 ``idempotency_error``), and lets a test pay a session, change what it holds, or script
the next answers. Nothing leaves the process.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from a2a_gateway.billing.stripe_signature import HEADER, sign

SECRET_KEY = "sk_test_fake_0123456789abcdefghijklmn"
WEBHOOK_SECRET = "whsec_fake_test_secret"
API_BASE = "http://stripe.test"
API_VERSION = "2024-06-20"

_ITEM = "line_items[0]"
_REQUIRED = {
    "mode",
    "success_url",
    "cancel_url",
    f"{_ITEM}[price_data][currency]",
    f"{_ITEM}[price_data][unit_amount]",
    f"{_ITEM}[price_data][product_data][name]",
    f"{_ITEM}[quantity]",
}
_OPTIONAL_PREFIXES = ("metadata[", "client_reference_id")


@dataclass(slots=True)
class Seen:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass(slots=True)
class Scripted:
    """An answer given instead of the real one (``chunked``: streamed without a Content-Length)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False


def _error(status: int, message: str, *, kind: str = "invalid_request_error", **extra: str) -> Response:
    body = {"error": {"type": kind, "message": message, **extra}}
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Request-Id": "req_fake"},
    )


def _json(body: dict[str, Any], *, replayed: bool = False) -> Response:
    headers = {"Request-Id": "req_fake"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


class FakeStripe:
    """Stripe's Checkout Session API in memory."""

    def __init__(self, secret_key: str = SECRET_KEY, *, clock: Callable[[], float] = lambda: 1_700_000_000):
        self.secret_key = secret_key
        self.clock = clock
        self.sessions: dict[str, dict[str, Any]] = {}
        # Idempotency-Key -> (the form it came with, the session it created).
        self.idempotency: dict[str, tuple[dict[str, str], str]] = {}
        self.requests: list[Seen] = []
        self.scripted: deque[Scripted] = deque()
        self._events = 0
        self.app = Starlette(
            routes=[
                Route("/v1/checkout/sessions", self._create, methods=["POST"]),
                Route("/v1/checkout/sessions/{session_id}", self._retrieve, methods=["GET"]),
            ]
        )

    # --- what a test does ---------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client whose requests reach this fake in process."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), **kwargs)

    def answer_next(
        self,
        status: int,
        body: bytes | dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        chunked: bool = False,
    ) -> None:
        """Give this answer to the next request, whatever it asks (then back to normal)."""
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        self.scripted.append(Scripted(status, raw, dict(headers or {}), chunked))

    def pay(self, session_id: str) -> dict[str, Any]:
        """The buyer pays: the session is complete and paid (its page URL is gone, as on Stripe)."""
        return self.update(session_id, payment_status="paid", status="complete", url=None)

    def update(self, session_id: str, **fields: Any) -> dict[str, Any]:
        """Change what the session holds (payment_status, amount_total, currency, metadata...)."""
        self.sessions[session_id].update(fields)
        return copy.deepcopy(self.sessions[session_id])

    def event(
        self, session_id: str, kind: str = "checkout.session.completed", *, event_id: str | None = None
    ) -> bytes:
        """A webhook body announcing ``kind`` for the session as it is now."""
        self._events += 1
        return webhook_event(
            copy.deepcopy(self.sessions[session_id]),
            kind=kind,
            event_id=event_id or f"evt_fake_{self._events:04d}",
            created=int(self.clock()),
        )

    # --- the endpoints ------------------------------------------------------------------------------

    async def _seen(self, request: Request) -> tuple[Seen, Response | None]:
        raw = await request.body()
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        seen = Seen(request.method, request.url.path, dict(request.headers), form)
        self.requests.append(seen)
        if self.scripted:
            return seen, self._scripted(self.scripted.popleft())
        authorization = request.headers.get("authorization", "")
        if not authorization:
            return seen, _error(401, "You did not provide an API key.")
        if authorization != f"Bearer {self.secret_key}":
            # Stripe masks all but the last four characters of a key it does not know.
            given = authorization.removeprefix("Bearer ")
            return seen, _error(401, f"Invalid API Key provided: {given[:8]}****{given[-4:]}")
        return seen, None

    def _scripted(self, answer: Scripted) -> Response:
        if not answer.chunked:
            return Response(answer.body, status_code=answer.status, headers=answer.headers)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(answer.body), 4096):
                yield answer.body[start : start + 4096]

        return StreamingResponse(chunks(), status_code=answer.status, headers=answer.headers)

    async def _create(self, request: Request) -> Response:
        seen, refused = await self._seen(request)
        if refused is not None:
            return refused
        form = seen.form
        for name in form:
            if name not in _REQUIRED and not name.startswith(_OPTIONAL_PREFIXES):
                return _error(
                    400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
                )
        missing = sorted(_REQUIRED - form.keys())
        if missing:
            return _error(400, f"Missing required param: {missing[0]}.", code="parameter_missing")
        if form["mode"] != "payment":
            return _error(400, "Invalid mode", code="parameter_invalid", param="mode")
        amount = form[f"{_ITEM}[price_data][unit_amount]"]
        quantity = form[f"{_ITEM}[quantity]"]
        if not (amount.isdigit() and quantity.isdigit()):
            return _error(400, "Invalid integer", code="parameter_invalid_integer")
        key = request.headers.get("idempotency-key")
        if key is not None and key in self.idempotency:
            first_form, session_id = self.idempotency[key]
            if first_form != form:
                return _error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                    kind="idempotency_error",
                )
            return _json(copy.deepcopy(self.sessions[session_id]), replayed=True)
        session_id = f"cs_test_fake{len(self.sessions) + 1:04d}"
        total = int(amount) * int(quantity)
        self.sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": total,
            "amount_total": total,
            "currency": form[f"{_ITEM}[price_data][currency]"],
            "client_reference_id": form.get("client_reference_id"),
            "metadata": {
                name.removeprefix("metadata[").removesuffix("]"): value
                for name, value in form.items()
                if name.startswith("metadata[")
            },
            "success_url": form["success_url"],
            "cancel_url": form["cancel_url"],
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "livemode": False,
            "created": int(self.clock()),
        }
        if key is not None:
            self.idempotency[key] = (form, session_id)
        return _json(copy.deepcopy(self.sessions[session_id]))

    async def _retrieve(self, request: Request) -> Response:
        _, refused = await self._seen(request)
        if refused is not None:
            return refused
        session = self.sessions.get(request.path_params["session_id"])
        if session is None:
            return _error(
                404,
                f"No such checkout.session: '{request.path_params['session_id']}'",
                code="resource_missing",
                param="session",
            )
        return _json(copy.deepcopy(session))


def webhook_event(
    session: dict[str, Any],
    *,
    kind: str = "checkout.session.completed",
    event_id: str = "evt_fake_0001",
    created: int = 1_700_000_000,
) -> bytes:
    """The body of a Stripe event whose object is ``session``."""
    return orjson.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "livemode": False,
            "pending_webhooks": 1,
            "type": kind,
            "data": {"object": session},
        }
    )


def signed_headers(body: bytes, timestamp: int, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """The headers Stripe sends with ``body`` at ``timestamp``."""
    return {HEADER: sign(body, secret, timestamp), "Content-Type": "application/json; charset=utf-8"}
