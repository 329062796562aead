"""JSON-RPC 2.0 envelope: validation that keeps the request id, response and error builders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from a2a_gateway.errors import InvalidRequest

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

RequestId = str | int | None


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated JSON-RPC request."""

    id: RequestId
    method: str
    params: dict[str, Any]


def _valid_id(value: object) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def request_id_of(body: object) -> RequestId:
    """The id to echo in an error about this body: its own id when that id is valid, else null."""
    if isinstance(body, dict):
        value = body.get("id")
        if _valid_id(value):
            return value
    return None


def parse_envelope(body: object) -> Envelope:
    """Check a decoded body against JSON-RPC 2.0; raise InvalidRequest (the id is kept by the caller)."""
    if isinstance(body, list):
        raise InvalidRequest("Batch requests are not supported")
    if not isinstance(body, dict):
        raise InvalidRequest("The request must be a JSON object")
    if body.get("jsonrpc") != "2.0":
        raise InvalidRequest('"jsonrpc" must be exactly "2.0"')
    method = body.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequest('"method" must be a non-empty string')
    if "id" in body and not _valid_id(body["id"]):
        raise InvalidRequest('"id" must be a string, an integer or null')
    params = body.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise InvalidRequest('"params" must be an object')
    return Envelope(id=body.get("id"), method=method, params=params)


def success(request_id: RequestId, result: Any) -> dict[str, Any]:
    """A JSON-RPC success response."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def failure(request_id: RequestId, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response; ``data`` is omitted when None."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}
