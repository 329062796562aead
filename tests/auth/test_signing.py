"""Agent Connect HMAC request signing and replay protection."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from a2a_gateway.auth.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MemoryNonceStore,
    sign,
    signed_headers,
    verify_signature,
)
from a2a_gateway.errors import Unauthenticated

SECRET = "s3cr3t_k3y_h3r3"
NOW = 1_767_225_600_000
BODY = b'{"symbol": "BTC", "side": "buy", "quantity": 0.01}'


def test_sign_matches_the_seed_formula() -> None:
    ts, method, path, body = "1700000000123", "post", "/orders?dry=1", '{"a": "é"}'
    expected = hmac.new(SECRET.encode(), f"{ts}POST{path}{body}".encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, ts, method, path, body) == expected
    assert sign(SECRET, int(ts), method, path, body.encode()) == expected
    assert (
        sign(SECRET, ts, "GET", "/market")
        == hmac.new(SECRET.encode(), f"{ts}GET/market".encode(), hashlib.sha256).hexdigest()
    )


def test_signed_headers() -> None:
    headers = signed_headers("nx_live_k", SECRET, "POST", "/orders", BODY, now_ms=NOW)
    assert headers == {
        HEADER_KEY: "nx_live_k",
        HEADER_TIMESTAMP: str(NOW),
        HEADER_SIGNATURE: sign(SECRET, NOW, "POST", "/orders", BODY),
    }
    assert signed_headers("k", SECRET, "GET", "/x")[HEADER_TIMESTAMP].isdigit()


async def check(
    *,
    secret: str = SECRET,
    method: str = "POST",
    path: str = "/orders",
    body: bytes = BODY,
    timestamp: str | None = str(NOW),
    signature: str | None = "default",
    nonces: MemoryNonceStore | None = None,
    now_ms: int = NOW,
) -> None:
    if signature == "default":
        signature = sign(SECRET, str(NOW), "POST", "/orders", BODY)
    await verify_signature(
        secret=secret,
        method=method,
        path=path,
        body=body,
        timestamp=timestamp,
        signature=signature,
        key_id="key-1",
        nonces=MemoryNonceStore() if nonces is None else nonces,
        now_ms=now_ms,
    )


async def refused(message: str, **kwargs: object) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await check(**kwargs)  # type: ignore[arg-type]
    assert caught.value.message == message
    assert SECRET not in caught.value.message


async def test_valid_request_and_lowercase_method() -> None:
    await check()
    await check(method="post")
    await check(signature=sign(SECRET, str(NOW), "POST", "/orders", BODY).upper())


async def test_missing_headers() -> None:
    await refused("Missing request signature headers", timestamp=None)
    await refused("Missing request signature headers", signature=None)
    await refused("Missing request signature headers", signature="")


@pytest.mark.parametrize("timestamp", ["abc", "-1", "1.5", " 1", "١٢٣", "9" * 16])
async def test_malformed_timestamp(timestamp: str) -> None:
    await refused("Malformed request timestamp", timestamp=timestamp)


@pytest.mark.parametrize("skew", [-30_001, 30_001, -(10**9), 10**9])
async def test_skewed_timestamp_both_directions(skew: int) -> None:
    await refused("Request timestamp is outside the allowed window", now_ms=NOW + skew)


@pytest.mark.parametrize("skew", [-30_000, 30_000])
async def test_window_edges_are_accepted(skew: int) -> None:
    await check(now_ms=NOW + skew)


@pytest.mark.parametrize(
    "change",
    [
        {"secret": "wrong"},
        {"body": BODY.replace(b"0.01", b"100")},
        {"body": b""},
        {"body": BODY + b"\xff"},
        {"path": "/orders/other"},
        {"path": "/orders?x=1"},
        {"method": "DELETE"},
        {"signature": "0" * 64},
        {"signature": "not hex é"},
        {"timestamp": str(NOW + 1)},
    ],
)
async def test_tampering(change: dict[str, object]) -> None:
    await refused("Invalid request signature", **change)


async def test_replay_is_refused_even_with_recased_signature() -> None:
    nonces = MemoryNonceStore()
    signature = sign(SECRET, str(NOW), "POST", "/orders", BODY)
    await check(nonces=nonces, signature=signature)
    await refused("Replayed request", nonces=nonces, signature=signature)
    await refused("Replayed request", nonces=nonces, signature=signature.upper(), now_ms=NOW + 1000)


async def test_bad_signatures_do_not_fill_the_nonce_store() -> None:
    nonces = MemoryNonceStore()
    await refused("Invalid request signature", nonces=nonces, signature="0" * 64)
    assert nonces.size == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_memory_nonce_store_expiry() -> None:
    clock = FakeClock()
    store = MemoryNonceStore(clock=clock)
    assert await store.remember("k", "sig", 60)
    assert not await store.remember("k", "sig", 60)
    assert await store.remember("other-key", "sig", 60)  # per key id
    clock.now += 59.9
    assert not await store.remember("k", "sig", 60)
    clock.now += 0.1
    assert await store.remember("k", "sig", 60)
    assert not await store.remember("k", "sig", 60)


async def test_memory_nonce_store_is_bounded_and_evicts_expired_first() -> None:
    clock = FakeClock()
    store = MemoryNonceStore(max_entries=3, clock=clock)
    assert await store.remember("k", "short", 1)
    assert await store.remember("k", "a", 60)
    assert await store.remember("k", "b", 60)
    clock.now += 2  # "short" expired: it goes, the live ones stay
    assert await store.remember("k", "c", 60)
    assert store.size == 3
    assert not await store.remember("k", "a", 60)
    clock.now += 1
    assert await store.remember("k", "d", 60)  # full of live entries: the oldest ("a") is evicted
    assert store.size == 3
    assert not await store.remember("k", "b", 60)
    assert not await store.remember("k", "d", 60)
    assert await store.remember("k", "a", 60)


async def test_memory_nonce_store_stays_bounded_under_load() -> None:
    clock = FakeClock()
    store = MemoryNonceStore(max_entries=100, clock=clock)
    for i in range(1000):
        clock.now += 0.01
        assert await store.remember("k", str(i), 5 if i % 2 else 60)
        assert store.size <= 100
    assert len(store._heap) <= 200
