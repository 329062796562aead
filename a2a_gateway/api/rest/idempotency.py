"""Idempotency-Key on REST creates, with Stripe's semantics: a retry with the same key and body gets the
first answer again (errors included) for 24 h instead of running the request twice.

Not stored, so the same key may simply be retried: 5xx answers, validation errors (400, 413) and rate
limits (429); an answer that raised something unexpected (a 500) releases its key as well.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.api.errors import error_response
from a2a_gateway.api.http import raw_header, read_body
from a2a_gateway.api.rest.bodies import BODY_LIMIT
from a2a_gateway.errors import Conflict, GatewayError, InvalidParams

HEADER = b"idempotency-key"
REPLAYED = "Idempotent-Replayed"
TTL_SECONDS = 86_400
PRUNE_EVERY = 256  # claims between two lazy deletions of expired keys
_NOT_STORED = frozenset({400, 413, 429})


class StoredKey(Protocol):
    """A key someone already claimed (storage.idempotency_repository.StoredKey)."""

    @property
    def request_hash(self) -> str:
        """What the key was claimed for: method, path and body."""
        ...

    @property
    def done(self) -> bool:
        """Whether its answer is stored."""
        ...

    @property
    def status_code(self) -> int | None:
        """The stored answer's status."""
        ...

    @property
    def response_body(self) -> str | None:
        """The stored answer's body."""
        ...

    @property
    def created_us(self) -> int:
        """When it was claimed."""
        ...


class IdempotencyStore(Protocol):
    """Where claims and answers are kept (storage.idempotency_repository.SqlIdempotencyStore)."""

    async def claim(
        self, principal_id: str, key: str, request_hash: str, now_us: int, expired_before_us: int
    ) -> StoredKey | None:
        """None when this request claimed the key, else the claim already there."""
        ...

    async def finish(self, principal_id: str, key: str, status_code: int, body: str) -> None:
        """Store the answer of a claimed key."""
        ...

    async def release(self, principal_id: str, key: str) -> None:
        """Give a claimed key up without an answer."""
        ...

    async def prune(self, expired_before_us: int, limit: int = 500) -> int:
        """Delete expired keys."""
        ...


class IdempotencyKeyInUse(Conflict):
    """A request with the same key has not finished yet."""

    reason = "IDEMPOTENCY_KEY_IN_USE"
    default_message = "A request with this Idempotency-Key is still in progress; retry later"


class InvalidIdempotencyKey(InvalidParams):
    """The header is empty, too long or not printable ASCII."""

    reason = "INVALID_IDEMPOTENCY_KEY"
    default_message = "Idempotency-Key must be 1 to 255 printable ASCII characters"


def presented_key(request: Request) -> str | None:
    """The request's Idempotency-Key, checked: 1 to 255 printable ASCII characters (None: no header)."""
    key = raw_header(request, HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise InvalidIdempotencyKey(
            violations=[{"field": "Idempotency-Key", "description": "1 to 255 printable ASCII characters"}]
        )
    return key


def request_hash(method: str, path: str, body: bytes) -> str:
    """What a key is bound to: the method, the path and a digest of the exact body."""
    digest = hashlib.sha256()
    for piece in (method.encode(), b"\n", path.encode(), b"\n", body):
        digest.update(piece)
    return digest.hexdigest()


def _reused() -> Response:
    body = {
        "error": {
            "code": "IDEMPOTENCY_KEY_REUSED",
            "message": "This Idempotency-Key was used with a different request; use a new key",
        }
    }
    return Response(orjson.dumps(body), status_code=422, media_type="application/json")


class Idempotency:
    """Runs a create at most once per (principal, key) and replays its stored answer for 24 h."""

    def __init__(
        self, store: IdempotencyStore, clock: Callable[[], float] = time.time, ttl_s: int = TTL_SECONDS
    ) -> None:
        self._store = store
        self._clock = clock
        self._ttl_us = ttl_s * 1_000_000
        self._claims = 0

    async def run(
        self, request: Request, principal_id: str, handler: Callable[[], Awaitable[Response]]
    ) -> Response:
        """The handler's answer, or the stored answer of the first request made with the same key."""
        key = presented_key(request)
        if key is None:
            return await handler()
        body = await read_body(request, BODY_LIMIT)
        wanted = request_hash(request.method, request.url.path, body)
        now_us = int(self._clock() * 1_000_000)
        expired_before = now_us - self._ttl_us
        found = await self._store.claim(principal_id, key, wanted, now_us, expired_before)
        if found is not None:
            if found.request_hash != wanted:
                return _reused()
            if not found.done or found.status_code is None:
                raise IdempotencyKeyInUse()
            return Response(
                (found.response_body or "").encode(),
                status_code=found.status_code,
                media_type="application/json",
                headers={REPLAYED: "true"},
            )
        await self._maybe_prune(expired_before)
        try:
            try:
                response = await handler()
            except GatewayError as error:
                response = error_response(error)
        except BaseException:
            await self._store.release(principal_id, key)  # a 500 or a cancel: the key may be retried
            raise
        status = response.status_code
        if status >= 500 or status in _NOT_STORED:
            await self._store.release(principal_id, key)
        else:
            await self._store.finish(principal_id, key, status, bytes(response.body).decode())
        return response

    async def _maybe_prune(self, expired_before_us: int) -> None:
        # Old keys are ignored by claim already; deleting them now and then only keeps the table small.
        self._claims += 1
        if self._claims % PRUNE_EVERY == 1:
            await self._store.prune(expired_before_us)
