"""How the engine's REST API reads requests and writes answers (seed ``000_…``'s conventions).

- **Success** is the bare object or list, never wrapped; Decimals become JSON numbers
  (:func:`~agents_examples.trading.engine.jsonvalues.plain`), encoded with orjson.
- **Errors** are ``{"error": message, "code": CODE}`` with the HTTP status, plus any details the
  refusal carries (``field``, ``errors``, ...).
- **Bodies** are JSON, read up to :data:`MAX_BODY_BYTES` (64 KiB; more is 413 ``PAYLOAD_TOO_LARGE``,
  told from ``Content-Length`` before anything is read when the client sends it); one that does not
  parse is 400 ``INVALID_JSON``.
- **Pagination** is ``limit`` (1 to :data:`MAX_LIMIT`, default :data:`DEFAULT_LIMIT`) and ``offset``
  (0 or more); anything else is 400 ``INVALID_PAGINATION`` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from agents_examples.trading.engine.errors import EngineError
from agents_examples.trading.engine.jsonvalues import plain

MAX_BODY_BYTES: Final = 64 * 1024
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
MAX_OFFSET: Final = 10**9
JSON: Final = "application/json"

Item = TypeVar("Item")


def json_response(doc: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``doc`` (Decimals as numbers) as a JSON answer."""
    return Response(orjson.dumps(plain(doc)), status, headers=dict(headers or {}), media_type=JSON)


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The seed's error document: ``{"error": message, "code": code, ...details}``."""
    return {"error": message, "code": code, **details}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None, **details: Any
) -> Response:
    """An error answer in the seed's shape."""
    return json_response(error_body(code, message, **details), status, headers)


def refusal(error: EngineError, headers: Mapping[str, str] | None = None) -> Response:
    """An :class:`EngineError` as its answer (details such as ``field`` and ``errors`` included)."""
    details = {k: v for k, v in error.details.items() if k not in ("error", "code")}
    return error_response(error.status, error.code, error.message, headers, **details)


def too_large() -> EngineError:
    """413: the body is over the limit."""
    return EngineError(413, "PAYLOAD_TOO_LARGE", f"The body must be at most {MAX_BODY_BYTES} bytes")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, at most ``limit`` bytes (413 beyond)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed as JSON; None for an empty body; 400 ``INVALID_JSON`` when it does not parse."""
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise EngineError(400, "INVALID_JSON", "The body is not valid JSON") from None


async def read_json(request: Request) -> Any:
    """The request's JSON body (None when there is none), bounded and parsed as the module doc says."""
    return parse_json(await read_body(request))


async def read_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object; ``optional`` lets an empty body stand for ``{}``."""
    doc = await read_json(request)
    if doc is None and optional:
        return {}
    if not isinstance(doc, dict):
        raise EngineError(400, "VALIDATION_ERROR", "The body must be a JSON object")
    return doc


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: ``limit`` items after the first ``offset``."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def of(self, items: Sequence[Item]) -> list[Item]:
        """This page of an in-memory list."""
        return list(items[self.offset : self.offset + self.limit])


def _bad_page(field: str, rule: str) -> EngineError:
    return EngineError(400, "INVALID_PAGINATION", f"{field} must be {rule}", field=field)


def page_of(request: Request) -> Page:
    """The request's ``limit`` and ``offset`` (400 ``INVALID_PAGINATION`` when either is wrong)."""
    params = request.query_params
    limit, offset = DEFAULT_LIMIT, 0
    raw_limit, raw_offset = params.get("limit"), params.get("offset")
    if raw_limit is not None:
        parsed = _count(raw_limit)
        if parsed is None or not 1 <= parsed <= MAX_LIMIT:
            raise _bad_page("limit", f"an integer from 1 to {MAX_LIMIT}")
        limit = parsed
    if raw_offset is not None:
        parsed = _count(raw_offset)
        if parsed is None or parsed > MAX_OFFSET:
            raise _bad_page("offset", f"an integer from 0 to {MAX_OFFSET}")
        offset = parsed
    return Page(limit, offset)


def _count(text: str) -> int | None:
    """A non-negative decimal integer of at most 12 digits, or None."""
    if not (0 < len(text) <= 12 and text.isascii() and text.isdigit()):
        return None
    return int(text)


def query_text(request: Request, name: str, limit: int = 200) -> str | None:
    """A query parameter as text (None when absent or empty); 400 when over ``limit`` characters."""
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > limit:
        raise EngineError(400, "VALIDATION_ERROR", f"{name} is too long", field=name)
    return value.strip()
