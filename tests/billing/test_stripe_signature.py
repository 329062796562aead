"""Stripe-Signature verification: what Stripe signs is accepted, anything else is refused with its reason."""

from __future__ import annotations

import hmac

import pytest

from a2a_gateway.billing.stripe_signature import (
    BadSignature,
    WebhookNotConfigured,
    compute_signature,
    sign,
    verify,
)

SECRET = "whsec_test_secret"
OTHER_SECRET = "whsec_other_secret"
BODY = b'{"id":"evt_1"}'
T = 1_700_000_000


def refused(payload: bytes, header: str | None, *, now: float = T, secret: str = SECRET) -> str:
    with pytest.raises(BadSignature) as caught:
        verify(payload, header, secret, now=now)
    return caught.value.problem


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Computed outside Python:
    # printf '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret
    expected = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
    assert compute_signature(BODY, SECRET, T) == expected
    assert sign(BODY, SECRET, T) == f"t={T},v1={expected}"


def test_a_good_signature_verifies() -> None:
    verify(BODY, sign(BODY, SECRET, T), SECRET, now=T)
    verify(BODY, sign(BODY, SECRET, T), SECRET, now=T + 300)  # the edge of the window is inside


def test_a_signature_made_with_another_secret_is_refused() -> None:
    assert refused(BODY, sign(BODY, OTHER_SECRET, T)) == "mismatch"


def test_a_body_changed_by_one_byte_is_refused() -> None:
    header = sign(BODY, SECRET, T)
    tampered = BODY.replace(b"evt_1", b"evt_2")
    assert len(tampered) == len(BODY)
    assert refused(tampered, header) == "mismatch"
    assert refused(BODY + b" ", header) == "mismatch"


def test_a_different_timestamp_breaks_the_signature() -> None:
    v1 = compute_signature(BODY, SECRET, T)
    assert refused(BODY, f"t={T + 1},v1={v1}") == "mismatch"


def test_a_stale_timestamp_is_refused() -> None:
    assert refused(BODY, sign(BODY, SECRET, T), now=T + 301) == "stale"


def test_a_timestamp_from_the_future_is_refused() -> None:
    verify(BODY, sign(BODY, SECRET, T + 300), SECRET, now=T)
    assert refused(BODY, sign(BODY, SECRET, T + 301), now=T) == "future"


def test_the_tolerance_can_be_narrowed() -> None:
    with pytest.raises(BadSignature):
        verify(BODY, sign(BODY, SECRET, T), SECRET, now=T + 11, tolerance=10)


def test_any_of_several_v1_values_may_match_as_during_secret_rotation() -> None:
    old = compute_signature(BODY, OTHER_SECRET, T)
    new = compute_signature(BODY, SECRET, T)
    verify(BODY, f"t={T},v1={old},v1={new}", SECRET, now=T)
    verify(BODY, f"t={T},v1={new},v1={old}", SECRET, now=T)
    verify(BODY, f"t={T},v1={old},v1={new}", OTHER_SECRET, now=T)
    assert refused(BODY, f"t={T},v1={old},v1={'0' * 64}") == "mismatch"


def test_v0_is_ignored_even_when_it_carries_the_right_value() -> None:
    good = compute_signature(BODY, SECRET, T)
    assert refused(BODY, f"t={T},v0={good}") == "no_v1"
    verify(BODY, f"t={T},v0={'0' * 64},v1={good}", SECRET, now=T)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_refused(header: str | None) -> None:
    assert refused(BODY, header) == "missing"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "v1=" + "0" * 64,  # no timestamp
        "t=,v1=" + "0" * 64,
        "t=abc,v1=" + "0" * 64,
        "t=+1700000000,v1=" + "0" * 64,
        "t=1_700_000_000,v1=" + "0" * 64,
        "t=-5,v1=" + "0" * 64,
        f"t={T},t={T},v1=" + "0" * 64,  # two timestamps: which one was signed?
        "t=\u0661\u0667" + "\u0660" * 8 + ",v1=" + "0" * 64,  # Arabic-Indic digits pass isdigit()
    ],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    assert refused(BODY, header) == "malformed"


def test_a_header_without_v1_is_refused() -> None:
    assert refused(BODY, f"t={T}") == "no_v1"
    assert refused(BODY, f"t={T},v2=abc") == "no_v1"


def test_odd_v1_values_are_refused_not_crashing() -> None:
    for value in ["", "zz", "é" * 64, compute_signature(BODY, SECRET, T).upper()]:
        assert refused(BODY, f"t={T},v1={value}") == "mismatch"


def test_spaces_around_elements_are_tolerated() -> None:
    v1 = compute_signature(BODY, SECRET, T)
    verify(BODY, f" t={T} , v1={v1} ", SECRET, now=T)


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module calls hmac.compare_digest
    old = compute_signature(BODY, OTHER_SECRET, T)
    new = compute_signature(BODY, SECRET, T)
    verify(BODY, f"t={T},v1={new},v1={old}", SECRET, now=T)
    # Both candidates went through compare_digest, the matching one first: none was skipped.
    assert [b for _, b in compared] == [new.encode(), old.encode()]
    assert refused(BODY, f"t={T},v1={'0' * 64}") == "mismatch"
    assert len(compared) == 3


def test_without_a_secret_nothing_verifies() -> None:
    # An empty key is one anyone can sign with.
    header = f"t={T},v1={compute_signature(BODY, '', T)}"
    with pytest.raises(WebhookNotConfigured):
        verify(BODY, header, "", now=T)


def test_the_error_is_a_gateway_error_with_a_safe_message() -> None:
    with pytest.raises(BadSignature) as caught:
        verify(BODY, sign(BODY, OTHER_SECRET, T), SECRET, now=T)
    assert caught.value.reason == "BAD_SIGNATURE"
    assert SECRET not in caught.value.message and OTHER_SECRET not in caught.value.message
