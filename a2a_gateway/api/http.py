"""Reading requests straight from the ASGI scope and receive channel (no Headers object on the hot path)."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from a2a_gateway.errors import PayloadTooLarge


def raw_header(request: HTTPConnection, name: bytes) -> str | None:
    """One request header straight from the ASGI scope (no Headers object on the hot path)."""
    for key, value in request.scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


BODY_KEY = "a2a_gateway.body"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body from the ASGI messages, refusing more than ``limit`` bytes without reading on.

    The body is kept in the scope, so a signature check and the handler can both read it.
    """
    cached: bytes | None = request.scope.get(BODY_KEY)
    if cached is not None:
        return cached
    body = await _receive_body(request, limit)
    request.scope[BODY_KEY] = body
    return body


async def _receive_body(request: Request, limit: int) -> bytes:
    declared = raw_header(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
    receive = request.receive
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
