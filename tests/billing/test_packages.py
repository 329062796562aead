"""Credit packages, the server-side checks of a paid Checkout Session, and parsing checkout events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from a2a_gateway.billing.packages import (
    PACKAGES,
    BadWebhookEvent,
    CheckoutEvent,
    ForeignSession,
    SessionMismatch,
    SessionNotPaid,
    UnknownPackage,
    check_paid_session,
    package_by_id,
    parse_checkout_event,
    session_user_id,
)
from a2a_gateway.errors import GatewayError, InvalidParams

USER = "user-1"


def session(**changes: Any) -> dict[str, Any]:
    """A paid starter session as Stripe returns it; ``changes`` replace fields (None removes one)."""
    base: dict[str, Any] = {
        "id": "cs_test_a1",
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "status": "complete",
        "amount_total": 1000,
        "currency": "usd",
        "client_reference_id": USER,
        "metadata": {"userId": USER, "packageId": "starter"},
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def event(kind: str = "checkout.session.completed", **changes: Any) -> bytes:
    return orjson.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": kind,
            "livemode": False,
            "data": {"object": session(**changes)},
        }
    )


# --- packages ---------------------------------------------------------------------------------------


def test_the_seed_packages_and_their_prices() -> None:
    assert [(p.id, p.credits, p.amount, p.currency) for p in PACKAGES] == [
        ("starter", 1_000, 1_000, "usd"),
        ("pro", 5_000, 4_000, "usd"),
        ("enterprise", 25_000, 15_000, "usd"),
    ]
    assert package_by_id("pro").wire() == {
        "id": "pro",
        "name": "Pro",
        "credits": 5000,
        "amount": 4000,
        "currency": "usd",
    }


@pytest.mark.parametrize("package_id", ["", "Starter", "premium", None, 1, ["starter"]])
def test_an_unknown_package_is_refused_as_invalid_params(package_id: object) -> None:
    with pytest.raises(UnknownPackage) as caught:
        package_by_id(package_id)
    assert isinstance(caught.value, InvalidParams)
    assert "starter" in caught.value.message  # it says what can be bought


# --- check_paid_session -----------------------------------------------------------------------------


@pytest.mark.parametrize("package_id", ["starter", "pro", "enterprise"])
def test_a_paid_session_buys_its_packages_credits(package_id: str) -> None:
    package = package_by_id(package_id)
    paid = session(amount_total=package.amount, metadata={"userId": USER, "packageId": package_id})
    assert check_paid_session(paid, package) == package.credits
    assert check_paid_session(paid, package, user_id=USER) == package.credits


def test_the_currency_is_compared_without_case() -> None:
    assert check_paid_session(session(currency="USD"), package_by_id("starter")) == 1000


@pytest.mark.parametrize("status", ["unpaid", "no_payment_required", None, "PAID", True])
def test_a_session_not_paid_credits_nothing(status: object) -> None:
    with pytest.raises(SessionNotPaid):
        check_paid_session(session(payment_status=status), package_by_id("starter"))


@pytest.mark.parametrize("amount", [999, 1001, 0, -1000, 100_000, "1000", 1000.0, None, True])
def test_a_wrong_amount_is_a_mismatch(amount: object) -> None:
    with pytest.raises(SessionMismatch):
        check_paid_session(session(amount_total=amount), package_by_id("starter"))


def test_a_session_for_a_cheaper_package_cannot_be_credited_as_a_dearer_one() -> None:
    # A starter session ($10) claimed as enterprise (25,000 credits).
    with pytest.raises(SessionMismatch):
        check_paid_session(session(), package_by_id("enterprise"))
    # Even with its metadata changed to name enterprise, $10 is not enterprise's price.
    relabelled = session(metadata={"userId": USER, "packageId": "enterprise"})
    with pytest.raises(SessionMismatch):
        check_paid_session(relabelled, package_by_id("enterprise"))


@pytest.mark.parametrize("currency", ["eur", "", None, 840])
def test_a_wrong_currency_is_a_mismatch(currency: object) -> None:
    with pytest.raises(SessionMismatch):
        check_paid_session(session(currency=currency), package_by_id("starter"))


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {},
        {"userId": USER},
        {"packageId": "starter"},
        {"userId": "", "packageId": "starter"},
        {"userId": 7, "packageId": "starter"},
        {"userId": USER, "packageId": "pro"},
        "userId=user-1",
    ],
)
def test_missing_or_wrong_metadata_is_a_mismatch(metadata: object) -> None:
    with pytest.raises(SessionMismatch):
        check_paid_session(session(metadata=metadata), package_by_id("starter"))


def test_a_session_of_another_user_is_a_mismatch() -> None:
    with pytest.raises(SessionMismatch):
        check_paid_session(session(), package_by_id("starter"), user_id="user-2")


def test_the_sessions_user_comes_from_its_metadata() -> None:
    assert session_user_id(session(client_reference_id="someone-else")) == USER
    with pytest.raises(SessionMismatch):
        session_user_id(session(metadata={"packageId": "starter"}))


def test_refusals_are_gateway_errors_with_distinct_reasons() -> None:
    reasons = set()
    for make in (
        lambda: check_paid_session(session(payment_status="unpaid"), package_by_id("starter")),
        lambda: check_paid_session(session(amount_total=1), package_by_id("starter")),
        lambda: package_by_id("nope"),
    ):
        with pytest.raises(GatewayError) as caught:
            make()
        reasons.add(caught.value.reason)
    assert reasons == {"SESSION_NOT_PAID", "SESSION_MISMATCH", "UNKNOWN_PACKAGE"}


# --- parse_checkout_event ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["checkout.session.completed", "checkout.session.async_payment_succeeded"])
def test_a_checkout_event_is_parsed(kind: str) -> None:
    assert parse_checkout_event(event(kind)) == CheckoutEvent(
        event_id="evt_1",
        type=kind,
        session_id="cs_test_a1",
        user_id=USER,
        package_id="starter",
        livemode=False,
    )


def test_an_unpaid_completed_event_still_parses_the_payment_is_checked_on_the_session() -> None:
    parsed = parse_checkout_event(event(payment_status="unpaid"))
    assert parsed is not None and parsed.session_id == "cs_test_a1"


@pytest.mark.parametrize(
    "kind",
    [
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "payment_intent.succeeded",
        "charge.refunded",
    ],
)
def test_other_event_types_are_acknowledged_and_ignored(kind: str) -> None:
    assert parse_checkout_event(event(kind)) is None
    # Even when their object is nothing like a session.
    other = orjson.dumps({"id": "evt_2", "type": kind, "data": {"object": {"id": "pi_1"}}})
    assert parse_checkout_event(other) is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"evt_1"',
        b'{"type": "checkout.session.completed"}',
        b'{"id": "evt_1"}',
        b'{"id": "", "type": "checkout.session.completed"}',
        b'{"id": 5, "type": "checkout.session.completed"}',
        b'{"id": "evt_1", "type": "checkout.session.completed"}',
        b'{"id": "evt_1", "type": "checkout.session.completed", "data": {}}',
        b'{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": []}}',
    ],
)
def test_a_body_that_is_not_a_stripe_event_is_refused(body: bytes) -> None:
    with pytest.raises(BadWebhookEvent):
        parse_checkout_event(body)


@pytest.mark.parametrize("session_id", [None, "", 12, "pi_123", "cs_../../v1/customers", "cs_a b", "cs_"])
def test_a_checkout_event_without_a_valid_session_id_is_refused(session_id: object) -> None:
    body = event(id=session_id) if session_id is not None else event(id=None)
    with pytest.raises(BadWebhookEvent):
        parse_checkout_event(body)


@pytest.mark.parametrize(
    "metadata", [{}, {"userId": USER}, {"packageId": "starter"}, {"userId": "", "packageId": "starter"}]
)
def test_a_session_without_the_gateways_metadata_is_foreign(metadata: dict[str, Any]) -> None:
    with pytest.raises(ForeignSession) as caught:
        parse_checkout_event(event(metadata=metadata))
    assert isinstance(caught.value, BadWebhookEvent)
