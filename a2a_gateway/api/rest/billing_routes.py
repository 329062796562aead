"""/api/v1/billing (seed 002): balance, transactions, usage, buying credits through Stripe, its webhook.

Reading needs ``billing:read``, buying ``billing:write``; the webhook is authenticated by its Stripe
signature alone. A purchase is credited only from a verified webhook, for a session Stripe itself says
is paid with the package's amount and currency, once per session and per event.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.http import raw_header, read_body
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest import idempotency
from a2a_gateway.api.rest.bodies import RestBody, data, parse, query_int
from a2a_gateway.auth.models import Principal
from a2a_gateway.billing import packages, stripe_signature
from a2a_gateway.billing.history import Entry, Usage
from a2a_gateway.billing.models import Balance, TransferKind
from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import InvalidParams, Unavailable
from a2a_gateway.protocol.base import format_timestamp

log = logging.getLogger(__name__)
PERIODS = {"7d": 7, "30d": 30, "90d": 90}
WEBHOOK_BODY_LIMIT = 262_144  # Stripe's events are a few KiB
CHECKOUT_BUDGET = "billing:checkout"


class CheckoutSession(Protocol):
    """A created Checkout Session: its id and the page to pay at."""

    @property
    def id(self) -> str:
        """The session id (cs_...)."""
        ...

    @property
    def url(self) -> str:
        """Where the buyer pays."""
        ...


class Payments(Protocol):
    """The payment provider the routes use (outbound.stripe_client.StripeClient in the app)."""

    async def create_checkout_session(
        self,
        user_id: str,
        package: packages.CreditPackage,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """A session selling ``package`` to ``user_id``; the same key gives the same session."""
        ...

    async def retrieve_session(self, session_id: str) -> dict[str, Any]:
        """The session as the provider has it now."""
        ...


class CheckoutBody(RestBody):
    """POST /billing/checkout body."""

    package_id: str = Field(min_length=1, max_length=50)


def balance_view(balance: Balance) -> dict[str, Any]:
    """The seed's balance shape (snake_case, as printed there) plus what is held and available."""
    return {
        "user_id": balance.user_id,
        "balance": balance.balance,
        "available": balance.available,
        "held": balance.held,
        "promo": balance.promo,
        "total_earned": balance.total_earned,
        "total_spent": balance.total_spent,
        "total_purchased": balance.total_purchased,
    }


def entry_view(entry: Entry) -> dict[str, Any]:
    """One transaction: a signed amount and the available balance after it."""
    return {
        "id": entry.id,
        "type": entry.type.value,
        "amount": entry.amount,
        "balanceAfter": entry.balance_after,
        "taskId": entry.task_id,
        "promo": entry.promo,
        "description": entry.description,
        "createdAt": format_timestamp(entry.created_at),
    }


def usage_view(period: str, usage: Usage) -> dict[str, Any]:
    """The seed's usage shape."""
    return {
        "period": period,
        "daily": [{"date": d.date.isoformat(), "spent": d.spent, "earned": d.earned} for d in usage.daily],
        "totalSpent": usage.total_spent,
        "totalEarned": usage.total_earned,
    }


class BillingApi:
    """The billing routes over the ledger service and, when configured, Stripe."""

    def __init__(
        self,
        authn: Authenticator,
        billing: BillingService,
        *,
        stripe: Payments | None,
        webhook_secret: str | None,
        success_url: str,
        cancel_url: str,
        clock: Callable[[], float] = time.time,
        idempotency_layer: idempotency.Idempotency | None = None,
    ) -> None:
        self._authn = authn
        # Idempotency-Key answers stored by the gateway (None: only Stripe's own replay of the key).
        self.idempotency = idempotency_layer
        self._billing = billing
        self._stripe = stripe
        self._webhook_secret = webhook_secret
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._clock = clock

    def routes(self) -> list[BaseRoute]:
        """The route table of this resource."""
        return [
            Route("/api/v1/billing/balance", self.balance, methods=["GET"]),
            Route("/api/v1/billing/transactions", self.transactions, methods=["GET"]),
            Route("/api/v1/billing/usage", self.usage, methods=["GET"]),
            Route("/api/v1/billing/packages", self.packages, methods=["GET"]),
            Route("/api/v1/billing/checkout", self.checkout, methods=["POST"]),
            Route("/api/v1/billing/webhook", self.webhook, methods=["POST"]),
        ]

    async def _reader(self, request: Request) -> str:
        principal = await self._authn.resolve(request, required=True)
        principal.require("billing:read")
        return principal.id

    async def balance(self, request: Request) -> Response:
        """GET /api/v1/billing/balance: derived from the ledger's transfers."""
        return data(balance_view(await self._billing.balance(await self._reader(request))))

    async def transactions(self, request: Request) -> Response:
        """GET /api/v1/billing/transactions?limit&offset&type: newest first."""
        user = await self._reader(request)
        limit = query_int(request, "limit", 50, 1, 100)
        offset = query_int(request, "offset", 0, 0, 1_000_000)
        raw_type = request.query_params.get("type")
        kind = None
        if raw_type is not None:
            try:
                kind = TransferKind(raw_type)
            except ValueError:
                names = ", ".join(k.value for k in TransferKind)
                raise InvalidParams(
                    f"type must be one of {names}", violations=[{"field": "type", "description": names}]
                ) from None
        entries = await self._billing.transactions(user, limit, offset, kind)
        return data([entry_view(e) for e in entries])

    async def usage(self, request: Request) -> Response:
        """GET /api/v1/billing/usage?period=7d|30d|90d: daily spent and earned, and the totals."""
        user = await self._reader(request)
        period = request.query_params.get("period", "30d")
        days = PERIODS.get(period)
        if days is None:
            raise InvalidParams(
                "period must be 7d, 30d or 90d", violations=[{"field": "period", "description": "7d|30d|90d"}]
            )
        return data(usage_view(period, await self._billing.usage(user, days)))

    async def packages(self, request: Request) -> Response:
        """GET /api/v1/billing/packages: what can be bought (public)."""
        return data([p.wire() for p in packages.PACKAGES])

    async def checkout(self, request: Request) -> Response:
        """POST /api/v1/billing/checkout {packageId}: a Stripe Checkout Session's URL to pay at."""
        principal = await self._authn.resolve(request, required=True)
        principal.require("billing:write")
        if self.idempotency is None:
            return await self._checkout(request, principal, idempotency.presented_key(request))
        # A retry with the same key and body gets the stored answer without reaching Stripe again.
        return await self.idempotency.run(
            request,
            principal.id,
            lambda: self._checkout(request, principal, idempotency.presented_key(request)),
        )

    async def _checkout(self, request: Request, principal: Principal, presented: str | None) -> Response:
        body = await parse(request, CheckoutBody)
        package = packages.package_by_id(body.package_id)
        if self._stripe is None:
            raise Unavailable("Buying credits is not configured on this gateway")
        await self._authn.limiter.check(CHECKOUT_BUDGET, principal, None)
        # Stripe keeps an Idempotency-Key's answer for 24 h too: a retry with the client's own key gets the
        # same session even if this gateway's stored answer is gone; without one, every request is a new
        # session. Stripe's keys are at most 255 characters: a long client key goes as its digest.
        key = uuid.uuid4().hex
        if presented is not None:
            key = f"{principal.id}:{presented}"
            if len(key) > 255:
                key = f"{principal.id}:{hashlib.sha256(presented.encode()).hexdigest()}"
        session = await self._stripe.create_checkout_session(
            principal.id, package, self._success_url, self._cancel_url, key
        )
        return data({"url": session.url, "sessionId": session.id})

    async def webhook(self, request: Request) -> Response:
        """POST /api/v1/billing/webhook: Stripe's events; credits a paid session once, whatever the order."""
        if not self._webhook_secret or self._stripe is None:
            raise Unavailable("The Stripe webhook is not configured on this gateway")
        payload = await read_body(request, WEBHOOK_BODY_LIMIT)
        header = raw_header(request, stripe_signature.HEADER.lower().encode())
        stripe_signature.verify(payload, header, self._webhook_secret, now=self._clock())
        try:
            event = packages.parse_checkout_event(payload)
        except packages.ForeignSession:
            log.info("stripe webhook for a session this gateway did not create; acknowledged")
            return data({"received": True})
        if event is None:  # another event type: acknowledged, nothing to do
            return data({"received": True})
        # The event is only a hint: the session's state comes from Stripe itself.
        session = await self._stripe.retrieve_session(event.session_id)
        try:
            package = packages.package_by_id(str(session.get("metadata", {}).get("packageId", "")))
            credits = packages.check_paid_session(session, package, user_id=event.user_id)
        except packages.SessionNotPaid:
            return data({"received": True, "credited": False})  # async_payment_succeeded comes later
        except (packages.SessionMismatch, InvalidParams):
            log.error(
                "stripe session does not match its package; not credited", extra={"event": event.event_id}
            )
            return data({"received": True, "credited": False})
        credited = await self._billing.purchase(event.session_id, event.event_id, event.user_id, credits)
        return data({"received": True, "credited": credited})
