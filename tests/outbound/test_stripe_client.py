"""The Stripe client against the local fake: what it sends, idempotent replays, and every way it fails."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from a2a_gateway.billing.packages import SessionMismatch, check_paid_session, package_by_id
from a2a_gateway.billing.stripe_signature import verify
from a2a_gateway.errors import Conflict, InvalidParams, UpstreamUnavailable
from a2a_gateway.outbound.ssrf import GuardedTransport, SsrfGuard
from a2a_gateway.outbound.stripe_client import (
    MAX_ANSWER_BYTES,
    CheckoutSession,
    CheckoutSessionNotFound,
    StripeClient,
    StripeIdempotencyConflict,
    StripeNotConfigured,
    StripeRefused,
    StripeUnavailable,
)
from tests.stripe_fake import API_BASE, SECRET_KEY, WEBHOOK_SECRET, FakeStripe, signed_headers

USER = "user-42"
SUCCESS = "https://gw.example/billing/done?session={CHECKOUT_SESSION_ID}"
CANCEL = "https://gw.example/billing/cancelled"


@pytest.fixture
async def fake() -> FakeStripe:
    return FakeStripe()


@pytest.fixture
async def http(fake: FakeStripe) -> AsyncIterator[httpx.AsyncClient]:
    async with fake.client() as client:
        yield client


@pytest.fixture
def stripe(http: httpx.AsyncClient) -> StripeClient:
    return StripeClient(http, API_BASE, SECRET_KEY, timeout=5.0)


async def create(stripe: StripeClient, package_id: str = "starter", key: str = "key-1") -> CheckoutSession:
    return await stripe.create_checkout_session(USER, package_by_id(package_id), SUCCESS, CANCEL, key)


# --- creating a session -----------------------------------------------------------------------------


async def test_a_checkout_session_is_created_form_encoded_with_the_key_and_idempotency_key(
    fake: FakeStripe, stripe: StripeClient
) -> None:
    created = await create(stripe, "pro", key="idem-abc")
    assert created.id in fake.sessions
    assert created.url == f"https://checkout.stripe.com/c/pay/{created.id}"
    seen = fake.requests[-1]
    assert (seen.method, seen.path) == ("POST", "/v1/checkout/sessions")
    assert seen.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert seen.headers["idempotency-key"] == "idem-abc"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.form == {
        "mode": "payment",
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "client_reference_id": USER,
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "4000",
        "line_items[0][price_data][product_data][name]": "5,000 credits (Pro)",
        "line_items[0][quantity]": "1",
        "metadata[userId]": USER,
        "metadata[packageId]": "pro",
    }
    session = fake.sessions[created.id]
    assert (session["amount_total"], session["currency"], session["payment_status"]) == (
        4000,
        "usd",
        "unpaid",
    )
    assert session["metadata"] == {"userId": USER, "packageId": "pro"}


async def test_the_same_idempotency_key_replays_the_same_session(
    fake: FakeStripe, stripe: StripeClient
) -> None:
    first = await create(stripe, key="same")
    again = await create(stripe, key="same")
    assert again == first
    assert len(fake.sessions) == 1 and len(fake.requests) == 2
    other = await create(stripe, key="different")
    assert other.id != first.id and len(fake.sessions) == 2


async def test_the_same_idempotency_key_with_other_parameters_is_a_conflict(
    fake: FakeStripe, stripe: StripeClient
) -> None:
    await create(stripe, "starter", key="same")
    with pytest.raises(StripeIdempotencyConflict) as caught:
        await create(stripe, "enterprise", key="same")
    assert isinstance(caught.value, Conflict)
    assert len(fake.sessions) == 1


async def test_a_concurrent_request_with_the_key_is_a_conflict(
    fake: FakeStripe, stripe: StripeClient
) -> None:
    fake.answer_next(
        409,
        {"error": {"type": "idempotency_error", "code": "idempotency_key_in_use", "message": "in use"}},
    )
    with pytest.raises(StripeIdempotencyConflict):
        await create(stripe)


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "new\nline", "caf\u00e9"])
async def test_an_unusable_idempotency_key_is_refused_before_anything_is_sent(
    fake: FakeStripe, stripe: StripeClient, key: str
) -> None:
    with pytest.raises(InvalidParams):
        await create(stripe, key=key)
    assert fake.requests == []


async def test_a_255_character_key_is_accepted(stripe: StripeClient) -> None:
    await create(stripe, key="k" * 255)


# --- retrieving a session ---------------------------------------------------------------------------


async def test_a_session_is_retrieved_as_stripe_has_it_now(fake: FakeStripe, stripe: StripeClient) -> None:
    created = await create(stripe)
    unpaid = await stripe.retrieve_session(created.id)
    assert unpaid["payment_status"] == "unpaid"
    fake.pay(created.id)
    paid = await stripe.retrieve_session(created.id)
    assert paid["payment_status"] == "paid"
    assert check_paid_session(paid, package_by_id("starter"), user_id=USER) == 1000
    seen = fake.requests[-1]
    assert (seen.method, seen.path) == ("GET", f"/v1/checkout/sessions/{created.id}")
    assert seen.headers["authorization"] == f"Bearer {SECRET_KEY}"


async def test_a_session_changed_at_stripe_fails_the_server_side_check(
    fake: FakeStripe, stripe: StripeClient
) -> None:
    created = await create(stripe)
    fake.pay(created.id)
    fake.update(created.id, amount_total=1)
    with pytest.raises(SessionMismatch):
        check_paid_session(await stripe.retrieve_session(created.id), package_by_id("starter"))
    fake.update(created.id, amount_total=1000, currency="eur")
    with pytest.raises(SessionMismatch):
        check_paid_session(await stripe.retrieve_session(created.id), package_by_id("starter"))


async def test_an_unknown_session_is_not_found(stripe: StripeClient) -> None:
    with pytest.raises(CheckoutSessionNotFound) as caught:
        await stripe.retrieve_session("cs_test_nope")
    assert caught.value.status == 404 and caught.value.error_code == "resource_missing"


@pytest.mark.parametrize("session_id", ["", "../customers", "cs_test/../../v1/charges", "cs_a?b=c", "pi_123"])
async def test_a_session_id_that_is_not_one_is_refused_before_anything_is_sent(
    fake: FakeStripe, stripe: StripeClient, session_id: str
) -> None:
    with pytest.raises(InvalidParams):
        await stripe.retrieve_session(session_id)
    assert fake.requests == []


async def test_an_answer_about_another_session_is_unusable(fake: FakeStripe, stripe: StripeClient) -> None:
    created = await create(stripe)
    fake.answer_next(200, {**fake.sessions[created.id], "id": "cs_test_other"})
    with pytest.raises(StripeUnavailable):
        await stripe.retrieve_session(created.id)


async def test_a_webhook_from_the_fake_verifies_and_names_the_session(
    fake: FakeStripe, stripe: StripeClient
) -> None:
    created = await create(stripe)
    fake.pay(created.id)
    body = fake.event(created.id)
    headers = signed_headers(body, 1_700_000_000)
    verify(body, headers["Stripe-Signature"], WEBHOOK_SECRET, now=1_700_000_010)
    assert orjson.loads(body)["data"]["object"]["id"] == created.id


# --- Stripe's refusals and failures -----------------------------------------------------------------


async def test_a_wrong_key_is_refused_and_never_shown(
    fake: FakeStripe, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk_test_wrong_key_0123456789abcdef"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StripeRefused) as caught:
        await StripeClient(http, API_BASE, wrong).create_checkout_session(
            USER, package_by_id("starter"), SUCCESS, CANCEL, "k"
        )
    assert caught.value.status == 401
    assert isinstance(caught.value, UpstreamUnavailable)  # a 502 to the caller: the gateway's fault
    assert wrong not in caught.value.message and wrong not in caplog.text
    assert "401" in caplog.text


async def test_stripes_messages_are_logged_with_keys_masked(
    fake: FakeStripe, stripe: StripeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.answer_next(
        400,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "parameter_invalid",
                "message": f"Bad request made with {SECRET_KEY} and sk_live_abcdef123456",
            }
        },
        headers={"Request-Id": "req_123"},
    )
    with pytest.raises(StripeRefused) as caught:
        await create(stripe)
    assert (caught.value.status, caught.value.error_type, caught.value.error_code) == (
        400,
        "invalid_request_error",
        "parameter_invalid",
    )
    assert "parameter_invalid" in caplog.text and "req_123" in caplog.text
    assert SECRET_KEY not in caplog.text and "sk_live_abcdef123456" not in caplog.text
    assert "Bad request made with [key]" in caplog.text
    assert SECRET_KEY not in repr(stripe)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_overload_and_server_errors_are_unavailable(
    fake: FakeStripe, stripe: StripeClient, status: int
) -> None:
    fake.answer_next(status, {"error": {"type": "api_error", "message": "boom"}})
    with pytest.raises(StripeUnavailable):
        await create(stripe)
    fake.answer_next(status, b"<html>gateway error</html>")
    with pytest.raises(StripeUnavailable):
        await stripe.retrieve_session("cs_test_x")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": "cs_test_1"}',  # no url
        b'{"id": "cs_test_1", "url": "http://checkout.example/pay"}',  # not https
        b'{"id": "pi_1", "url": "https://checkout.stripe.com/c/pay/pi_1"}',
        b'{"url": "https://checkout.stripe.com/c/pay/x"}',
    ],
)
async def test_a_200_without_a_usable_session_is_unavailable(
    fake: FakeStripe, stripe: StripeClient, body: bytes
) -> None:
    fake.answer_next(200, body, headers={"content-type": "application/json"})
    with pytest.raises(StripeUnavailable):
        await create(stripe)


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_oversized_answer_is_refused(fake: FakeStripe, stripe: StripeClient, chunked: bool) -> None:
    huge = b'{"id": "cs_test_1", "url": "https://c.example/", "pad": "' + b"x" * MAX_ANSWER_BYTES + b'"}'
    fake.answer_next(200, huge, chunked=chunked)
    with pytest.raises(StripeUnavailable):
        await create(stripe)


async def test_a_compressed_answer_is_refused(fake: FakeStripe, stripe: StripeClient) -> None:
    created = await create(stripe)
    packed = gzip.compress(orjson.dumps(fake.sessions[created.id]))
    fake.answer_next(200, packed, headers={"content-encoding": "gzip"})
    with pytest.raises(StripeUnavailable):
        await stripe.retrieve_session(created.id)
    assert fake.requests[-1].headers["accept-encoding"] == "identity"


async def test_an_unreachable_stripe_is_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused, sent {request.headers['authorization']}", request=request)

    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(StripeUnavailable) as caught:
            await create(StripeClient(http, API_BASE, SECRET_KEY))
    assert SECRET_KEY not in caught.value.message and SECRET_KEY not in caplog.text
    assert "ConnectError" in caplog.text


async def test_a_stripe_that_never_answers_times_out() -> None:
    never = asyncio.Event()

    class Hanging(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await never.wait()
            raise AssertionError("unreachable")

    async with httpx.AsyncClient(transport=Hanging()) as http:
        with pytest.raises(StripeUnavailable):
            await StripeClient(http, API_BASE, SECRET_KEY, timeout=0.05).retrieve_session("cs_test_1")


async def test_without_a_secret_key_nothing_is_sent(fake: FakeStripe, http: httpx.AsyncClient) -> None:
    with pytest.raises(StripeNotConfigured):
        await create(StripeClient(http, API_BASE, ""))
    with pytest.raises(StripeNotConfigured):
        await StripeClient(http, API_BASE, "").retrieve_session("cs_test_1")
    assert fake.requests == []


async def test_the_ssrf_guard_applies_and_an_allowlisted_local_stripe_is_reached(fake: FakeStripe) -> None:
    local = "http://127.0.0.1:12111"
    inner = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=GuardedTransport(SsrfGuard(), inner)) as guarded:
        with pytest.raises(StripeUnavailable):
            await create(StripeClient(guarded, local, SECRET_KEY))
    assert fake.requests == []
    async with httpx.AsyncClient(transport=GuardedTransport(SsrfGuard(["127.0.0.1/32"]), inner)) as allowed:
        created = await create(StripeClient(allowed, local + "/", SECRET_KEY))
    assert created.id in fake.sessions
