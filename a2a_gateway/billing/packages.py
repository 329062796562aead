"""Credit packages for sale, and what a paid Stripe Checkout Session must show before it is credited.

The price of a package lives here, on the server: a session is credited only when Stripe says it is
paid, for exactly this package's amount and currency, and it names the gateway's user and package in its
metadata (set when the gateway created it). Nothing the buyer's browser says is believed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

from a2a_gateway.errors import GatewayError, InvalidParams

COMPLETED: Final = "checkout.session.completed"
ASYNC_PAYMENT_SUCCEEDED: Final = "checkout.session.async_payment_succeeded"
# checkout.session.completed arrives unpaid for delayed methods (bank debits); their money is announced
# by async_payment_succeeded later. Either may be the one that credits, and both may come, in any order.
CREDITING_EVENTS: Final = frozenset({COMPLETED, ASYNC_PAYMENT_SUCCEEDED})

SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
_MAX_ID = 255


@dataclass(frozen=True, slots=True)
class CreditPackage:
    """A package of credits at a fixed price in the currency's smallest unit (cents for usd)."""

    id: str
    name: str
    credits: int
    amount: int
    currency: str = "usd"

    def wire(self) -> dict[str, Any]:
        """The package as the API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "credits": self.credits,
            "amount": self.amount,
            "currency": self.currency,
        }


PACKAGES: Final[tuple[CreditPackage, ...]] = (
    CreditPackage("starter", "Starter", credits=1_000, amount=1_000),
    CreditPackage("pro", "Pro", credits=5_000, amount=4_000),
    CreditPackage("enterprise", "Enterprise", credits=25_000, amount=15_000),
)
_BY_ID: Final = {package.id: package for package in PACKAGES}


class UnknownPackage(InvalidParams):
    """No package has this id (REST 400)."""

    reason = "UNKNOWN_PACKAGE"
    default_message = "Unknown credit package"


class PurchaseRefused(GatewayError):
    """A Checkout Session that must not be credited; Stripe's event is still acknowledged."""

    reason = "PURCHASE_REFUSED"
    default_message = "The checkout session cannot be credited"


class SessionNotPaid(PurchaseRefused):
    """The session is not (yet) paid: a delayed payment may still succeed, announced by its own event."""

    reason = "SESSION_NOT_PAID"
    default_message = "The checkout session is not paid"


class SessionMismatch(PurchaseRefused):
    """The session does not match the package it names (amount, currency, package) or lacks its metadata.

    Retrying cannot help; an operator should look (the session was altered, or not made by the gateway).
    """

    reason = "SESSION_MISMATCH"
    default_message = "The checkout session does not match its package"


class BadWebhookEvent(InvalidParams):
    """A verified webhook body that is not a Stripe event of the shape Stripe documents (REST 400)."""

    reason = "BAD_WEBHOOK_EVENT"
    default_message = "The webhook body is not a valid Stripe event"


class ForeignSession(BadWebhookEvent):
    """A checkout event for a session the gateway did not create (no userId or packageId in its metadata)."""

    reason = "FOREIGN_SESSION"
    default_message = "The checkout session was not created by the gateway"


def package_by_id(package_id: object) -> CreditPackage:
    """The package with this id, or UnknownPackage."""
    found = _BY_ID.get(package_id) if isinstance(package_id, str) else None
    if found is None:
        raise UnknownPackage(f"Unknown credit package; choose one of: {', '.join(_BY_ID)}")
    return found


def _text(value: object) -> str | None:
    """A usable identifier: a non-empty string of sensible length, or None."""
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID and value.strip() == value:
        return value
    return None


def _metadata(session: dict[str, Any]) -> tuple[str | None, str | None]:
    """(userId, packageId) of a session's metadata, each None when absent or unusable."""
    metadata = session.get("metadata")
    if not isinstance(metadata, dict):
        return None, None
    return _text(metadata.get("userId")), _text(metadata.get("packageId"))


def check_paid_session(session: dict[str, Any], package: CreditPackage, *, user_id: str | None = None) -> int:
    """The credits a retrieved Checkout Session buys, after checking it server-side against ``package``.

    ``user_id``, when given (the user the event named), must be the one in the session's metadata.
    Raises SessionNotPaid or SessionMismatch.
    """
    if session.get("payment_status") != "paid":
        # "unpaid" (a delayed method still pending) and "no_payment_required" credit nothing.
        raise SessionNotPaid()
    owner, named = _metadata(session)
    if owner is None or named is None:
        raise SessionMismatch("The checkout session carries no userId or packageId metadata")
    if named != package.id:
        raise SessionMismatch("The checkout session names another package")
    if user_id is not None and owner != user_id:
        raise SessionMismatch("The checkout session belongs to another user")
    amount = session.get("amount_total")
    # bool is an int in Python; True must not pass for an amount of 1.
    if not isinstance(amount, int) or isinstance(amount, bool) or amount != package.amount:
        raise SessionMismatch("The checkout session's amount is not the package's price")
    currency = session.get("currency")
    if not isinstance(currency, str) or currency.lower() != package.currency:
        raise SessionMismatch("The checkout session's currency is not the package's")
    return package.credits


def session_user_id(session: dict[str, Any]) -> str:
    """The gateway user a Checkout Session was created for (its metadata), or SessionMismatch."""
    owner, _ = _metadata(session)
    if owner is None:
        raise SessionMismatch("The checkout session carries no userId metadata")
    return owner


@dataclass(frozen=True, slots=True)
class CheckoutEvent:
    """A verified Stripe event that may credit a purchase: which event, which session, for whom, what."""

    event_id: str
    type: str
    session_id: str
    user_id: str
    package_id: str
    livemode: bool


def parse_checkout_event(body: bytes) -> CheckoutEvent | None:
    """The checkout event of a verified webhook body; None for the event types that credit nothing.

    Call it only after ``stripe_signature.verify``: the body is parsed as received. Raises BadWebhookEvent
    (or ForeignSession for a session without the gateway's metadata).
    """
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadWebhookEvent("The webhook body is not JSON") from None
    if not isinstance(event, dict):
        raise BadWebhookEvent("The webhook body is not a JSON object")
    event_id, kind = _text(event.get("id")), event.get("type")
    if event_id is None or not isinstance(kind, str):
        raise BadWebhookEvent("The webhook event has no id or type")
    if kind not in CREDITING_EVENTS:
        return None
    data = event.get("data")
    session = data.get("object") if isinstance(data, dict) else None
    if not isinstance(session, dict):
        raise BadWebhookEvent("The checkout event carries no session")
    session_id = session.get("id")
    if not isinstance(session_id, str) or SESSION_ID.fullmatch(session_id) is None:
        raise BadWebhookEvent("The checkout event's session has no valid id")
    owner, package_id = _metadata(session)
    if owner is None or package_id is None:
        raise ForeignSession()
    return CheckoutEvent(
        event_id=event_id,
        type=kind,
        session_id=session_id,
        user_id=owner,
        package_id=package_id,
        livemode=event.get("livemode") is True,
    )
