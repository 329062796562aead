"""Stripe's HTTP API, the two calls the gateway makes: create a Checkout Session, retrieve one.

Requests are form-encoded as Stripe's API takes them, authenticated with the secret key as a bearer
token, and go through the gateway's guarded outbound client with a timeout and a bounded read. Whatever
goes wrong becomes a gateway error a caller may see: Stripe unreachable, slow, overloaded or answering
nonsense is StripeUnavailable; Stripe refusing the request is StripeRefused (the gateway's key or request
is wrong, so the caller is told nothing more and the log says why). The secret key is in no error and no
log line; Stripe's own error messages are logged with anything key-like masked.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode

import httpx
import orjson

from a2a_gateway.billing.packages import SESSION_ID, CreditPackage
from a2a_gateway.errors import (
    Conflict,
    InvalidAgentResponse,
    InvalidParams,
    OutboundRefused,
    Unavailable,
    UpstreamUnavailable,
)
from a2a_gateway.outbound.upstream_read import read_body

log = logging.getLogger(__name__)

SESSIONS_PATH: Final = "/v1/checkout/sessions"
MAX_ANSWER_BYTES: Final = 256 * 1024  # a session without expansions is a few kilobytes
MAX_IDEMPOTENCY_KEY: Final = 255  # Stripe's limit
_KEY_LIKE = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9*]+")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


class StripeUnavailable(UpstreamUnavailable):
    """Stripe could not be reached, timed out, was overloaded, or answered something unusable (502)."""

    reason = "PAYMENTS_UNAVAILABLE"
    default_message = "The payment provider is unavailable; try again later"


class StripeRefused(UpstreamUnavailable):
    """Stripe refused the gateway's request (its key, or a parameter); retrying will not help (502)."""

    reason = "PAYMENTS_REFUSED"
    default_message = "The payment provider refused the request"

    def __init__(
        self, message: str | None = None, *, status: int, error_type: str = "", error_code: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.error_code = error_code


class CheckoutSessionNotFound(StripeRefused):
    """Stripe knows no Checkout Session of this id (with this key: test and live keys see apart)."""

    reason = "CHECKOUT_SESSION_NOT_FOUND"
    default_message = "The checkout session does not exist"


class StripeIdempotencyConflict(Conflict):
    """Stripe is still running a request with this Idempotency-Key, or had it with other parameters (409)."""

    reason = "IDEMPOTENCY_CONFLICT"
    default_message = "A checkout with this idempotency key is in progress or had other parameters"


class StripeNotConfigured(Unavailable):
    """No Stripe secret key is set, so nothing can be bought (503)."""

    reason = "PAYMENTS_NOT_CONFIGURED"
    default_message = "Payments are not configured on this gateway"


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A Checkout Session just created: its id, and the Stripe-hosted page the buyer is sent to."""

    id: str
    url: str


def checkout_form(
    user_id: str, package: CreditPackage, success_url: str, cancel_url: str
) -> list[tuple[str, str]]:
    """The form fields of a one-off payment for ``package`` by ``user_id`` (Stripe's bracket notation)."""
    item = "line_items[0]"
    return [
        ("mode", "payment"),
        ("success_url", success_url),
        ("cancel_url", cancel_url),
        ("client_reference_id", user_id),
        (f"{item}[price_data][currency]", package.currency),
        (f"{item}[price_data][unit_amount]", str(package.amount)),
        (f"{item}[price_data][product_data][name]", f"{package.credits:,} credits ({package.name})"),
        (f"{item}[quantity]", "1"),
        # What the webhook reads back to know whom to credit for which package; never a credit count,
        # which the server takes from its own table.
        ("metadata[userId]", user_id),
        ("metadata[packageId]", package.id),
    ]


def _masked(text: str, secret: str) -> str:
    """Stripe's text for the log, with the secret key and anything shaped like a key masked."""
    if secret:
        text = text.replace(secret, "[key]")
    return _KEY_LIKE.sub("[key]", text)[:500]


class StripeClient:
    """Creates and retrieves Checkout Sessions with Stripe's HTTP API at ``api_base``."""

    def __init__(
        self, client: httpx.AsyncClient, api_base: str, secret_key: str, *, timeout: float = 10.0
    ) -> None:
        self._client = client
        self._base = api_base.rstrip("/")
        self._key = secret_key
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"StripeClient({self._base!r})"  # the key stays out of any repr that gets logged

    async def create_checkout_session(
        self,
        user_id: str,
        package: CreditPackage,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """A new Checkout Session for ``package``; the same ``idempotency_key`` gets Stripe's first answer."""
        if not (len(idempotency_key) <= MAX_IDEMPOTENCY_KEY and _PRINTABLE.fullmatch(idempotency_key)):
            raise InvalidParams(
                f"The idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            )
        form = urlencode(checkout_form(user_id, package, success_url, cancel_url)).encode("ascii")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": idempotency_key,
        }
        answer = await self._call("POST", SESSIONS_PATH, headers=headers, content=form)
        session_id = answer.get("id")
        url = answer.get("url")
        if not (isinstance(session_id, str) and SESSION_ID.fullmatch(session_id)):
            raise self._unusable("POST", SESSIONS_PATH, "no valid session id")
        if not (isinstance(url, str) and url.startswith("https://")):
            raise self._unusable("POST", SESSIONS_PATH, "no https checkout url")
        return CheckoutSession(session_id, url)

    async def retrieve_session(self, session_id: str) -> dict[str, Any]:
        """The Checkout Session as Stripe has it now: the truth about its payment, whatever a webhook said."""
        if SESSION_ID.fullmatch(session_id) is None:
            # Checked before it becomes part of a path.
            raise InvalidParams("Not a Checkout Session id")
        path = f"{SESSIONS_PATH}/{quote(session_id, safe='')}"
        answer = await self._call("GET", path, headers={})
        if answer.get("id") != session_id:
            raise self._unusable("GET", SESSIONS_PATH + "/{id}", "another session's id")
        return answer

    async def _call(
        self, method: str, path: str, *, headers: dict[str, str], content: bytes | None = None
    ) -> dict[str, Any]:
        """The JSON object of one bounded call's 200 answer; a gateway error for any other outcome."""
        if not self._key:
            raise StripeNotConfigured()
        sent = {
            **headers,
            "Authorization": f"Bearer {self._key}",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        try:
            # httpx's timeout bounds each read; this one bounds the whole call (a slow drip included).
            async with (
                asyncio.timeout(self._timeout),
                self._client.stream(
                    method, self._base + path, headers=sent, content=content, timeout=self._timeout
                ) as response,
            ):
                raw = await read_body(response, MAX_ANSWER_BYTES)
                status = response.status_code
                request_id = response.headers.get("request-id", "-")
        except (httpx.HTTPError, TimeoutError, OutboundRefused, InvalidAgentResponse) as exc:
            # Only the error's class: httpx messages may quote the request, and the guard's its addresses.
            log.warning("Stripe %s %s failed: %s", method, path, type(exc).__name__)
            raise StripeUnavailable() from None
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        if status != 200:
            details = answer if isinstance(answer, dict) else {}
            raise self._refusal(method, path, status, details, request_id)
        if not isinstance(answer, dict):
            log.warning("Stripe %s %s answered 200 without a JSON object", method, path)
            raise StripeUnavailable()
        return answer

    def _refusal(
        self, method: str, path: str, status: int, answer: dict[str, Any], request_id: str
    ) -> Exception:
        """The error for a non-200 answer, logged with Stripe's reason (key masked) and request id."""
        error = answer.get("error")
        details = error if isinstance(error, dict) else {}
        error_type = str(details.get("type") or "")[:100]
        error_code = str(details.get("code") or "")[:100]
        log.warning(
            "Stripe %s %s answered HTTP %d (%s/%s, request %s): %s",
            method,
            path,
            status,
            error_type or "-",
            error_code or "-",
            request_id[:100],
            _masked(str(details.get("message") or ""), self._key),
        )
        if status == 429 or status >= 500:
            return StripeUnavailable()
        if status == 409 or error_type == "idempotency_error":
            return StripeIdempotencyConflict()
        if status == 404 and method == "GET" and path.startswith(SESSIONS_PATH + "/"):
            return CheckoutSessionNotFound(status=status, error_type=error_type, error_code=error_code)
        return StripeRefused(status=status, error_type=error_type, error_code=error_code)

    def _unusable(self, method: str, path: str, why: str) -> StripeUnavailable:
        log.warning("Stripe %s %s answered 200 with %s", method, path, why)
        return StripeUnavailable()
