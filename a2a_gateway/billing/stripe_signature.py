"""Stripe's webhook signature (``Stripe-Signature: t=…,v1=…``), checked exactly as Stripe specifies.

The signed payload is ``"{t}.{raw body}"``: the bytes as they arrived, never a re-serialised JSON. Its
HMAC-SHA256 under the endpoint secret (the whole ``whsec_…`` string) must equal one of the header's ``v1``
values; there are several while an endpoint secret is being rotated, and ``v0`` values are ignored. The
timestamp must lie within ``tolerance`` seconds of now on either side: a stale one is a replay, and one
from the future is no more trustworthy (Stripe's own libraries check only the first).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final, Literal

from a2a_gateway.errors import GatewayError, Unavailable

HEADER: Final = "Stripe-Signature"
SCHEME: Final = "v1"
DEFAULT_TOLERANCE: Final = 300

Problem = Literal["missing", "malformed", "no_v1", "mismatch", "stale", "future"]


class BadSignature(GatewayError):
    """A webhook whose ``Stripe-Signature`` does not prove it came from Stripe just now (REST 400)."""

    reason = "BAD_SIGNATURE"
    default_message = "The Stripe-Signature header does not verify"

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem: Problem = problem


class WebhookNotConfigured(Unavailable):
    """No endpoint secret is set: with an empty HMAC key anyone could sign, so nothing is accepted."""

    reason = "WEBHOOK_NOT_CONFIGURED"
    default_message = "Stripe webhooks are not configured"


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``v1`` value Stripe sends for ``payload`` at ``timestamp``: hex HMAC-SHA256 of "{t}.{body}"."""
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """A ``Stripe-Signature`` header value for ``payload`` (for tests and the fake Stripe)."""
    return f"t={timestamp},{SCHEME}={compute_signature(payload, secret, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 candidates) of a header; elements split on "," and then on their first "="."""
    timestamps: list[str] = []
    candidates: list[str] = []
    for element in header.split(","):
        name, sep, value = element.strip().partition("=")
        if not sep:
            continue  # Stripe's parser skips what it cannot read as name=value; so does this one.
        if name == "t":
            timestamps.append(value)
        elif name == SCHEME:
            candidates.append(value)
    # One plain decimal "t": int() alone would also take "+1", " 1" or "1_0".
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        raise BadSignature("malformed", "The Stripe-Signature header has no single valid timestamp")
    return int(timestamps[0]), candidates


def verify(
    payload: bytes, header: str | None, secret: str, *, now: float, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Accept ``payload`` as Stripe's, signed within ``tolerance`` s of ``now``; else raise BadSignature."""
    if not secret:
        raise WebhookNotConfigured()
    if header is None or not header.strip():
        raise BadSignature("missing", "The Stripe-Signature header is missing")
    timestamp, candidates = _parse(header)
    if not candidates:
        raise BadSignature("no_v1", "The Stripe-Signature header carries no v1 signature")
    expected = compute_signature(payload, secret, timestamp).encode("ascii")
    # Every candidate is compared in constant time and none is skipped, so the time taken tells nothing
    # about which one (or how much of one) matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "surrogateescape"))
    if not matched:
        raise BadSignature("mismatch", "No v1 signature matches the payload")
    if timestamp < now - tolerance:
        raise BadSignature("stale", "The Stripe-Signature timestamp is too old")
    if timestamp > now + tolerance:
        raise BadSignature("future", "The Stripe-Signature timestamp is in the future")
