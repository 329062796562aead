"""The one mapping from GatewayError classes to JSON-RPC codes, HTTP statuses and REST error bodies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway import errors as e
from a2a_gateway.api.busy import busy_error, is_database_busy
from a2a_gateway.billing.caps import SpendCapReached
from a2a_gateway.billing.stripe_signature import BadSignature
from a2a_gateway.protocol import jsonrpc
from a2a_gateway.protocol.version import ProtocolVersion
from a2a_gateway.routing.pricing import PriceAboveLimit

log = logging.getLogger(__name__)

A2A_DOMAIN = "a2a-protocol.org"
GATEWAY_DOMAIN = "a2a-gateway"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True, slots=True)
class Mapping:
    """How one error class appears on each transport."""

    rpc_code: int
    http_status: int
    domain: str = A2A_DOMAIN


TABLE: dict[type[e.GatewayError], Mapping] = {
    e.TaskNotFound: Mapping(-32001, 404),
    e.TaskNotCancelable: Mapping(-32002, 409),
    e.PushNotificationNotSupported: Mapping(-32003, 400),
    e.UnsupportedOperation: Mapping(-32004, 400),
    e.ContentTypeNotSupported: Mapping(-32005, 415),
    e.InvalidAgentResponse: Mapping(-32006, 502),
    e.ExtendedAgentCardNotConfigured: Mapping(-32007, 400),
    e.ExtensionSupportRequired: Mapping(-32008, 400),
    e.VersionNotSupported: Mapping(-32009, 400),
    e.ParseError: Mapping(jsonrpc.PARSE_ERROR, 400),
    e.InvalidRequest: Mapping(jsonrpc.INVALID_REQUEST, 400),
    e.MethodNotFound: Mapping(jsonrpc.METHOD_NOT_FOUND, 404),
    e.InvalidParams: Mapping(jsonrpc.INVALID_PARAMS, 400),
    e.PayloadTooLarge: Mapping(jsonrpc.INVALID_REQUEST, 413),
    e.OutboundRefused: Mapping(-32050, 400, GATEWAY_DOMAIN),
    e.UpstreamUnavailable: Mapping(-32051, 502, GATEWAY_DOMAIN),
    e.Unavailable: Mapping(-32052, 503, GATEWAY_DOMAIN),
    e.Unauthenticated: Mapping(-32060, 401, GATEWAY_DOMAIN),
    e.Forbidden: Mapping(-32061, 403, GATEWAY_DOMAIN),
    e.RateLimited: Mapping(-32062, 429, GATEWAY_DOMAIN),
    e.AccountLocked: Mapping(-32063, 423, GATEWAY_DOMAIN),
    e.NotFound: Mapping(-32064, 404, GATEWAY_DOMAIN),
    e.Conflict: Mapping(-32065, 409, GATEWAY_DOMAIN),
    e.InsufficientCredits: Mapping(-32070, 402, GATEWAY_DOMAIN),
    BadSignature: Mapping(-32071, 400, GATEWAY_DOMAIN),
    PriceAboveLimit: Mapping(-32072, 402, GATEWAY_DOMAIN),
    SpendCapReached: Mapping(-32073, 402, GATEWAY_DOMAIN),
}
# Errors about the caller's credentials or budget keep their HTTP status on the JSON-RPC endpoint too.
TRANSPORT_STATUS = (e.Unauthenticated, e.Forbidden, e.RateLimited, e.PayloadTooLarge)
_FALLBACK = Mapping(jsonrpc.INTERNAL_ERROR, 500, GATEWAY_DOMAIN)
_STANDARD = {jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST, jsonrpc.METHOD_NOT_FOUND, jsonrpc.INTERNAL_ERROR}


def mapping_of(error: e.GatewayError) -> Mapping:
    """The mapping of an error's class (or its nearest mapped base)."""
    for cls in type(error).__mro__:
        found = TABLE.get(cls)
        if found is not None:
            return found
    return _FALLBACK


def from_validation(exc: ValidationError, prefix: str = "") -> e.InvalidParams:
    """A pydantic failure as InvalidParams, naming fields but never echoing the input values."""
    violations = [
        {
            "field": prefix + ".".join(str(p) for p in err["loc"]),
            "description": err["msg"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    summary = "; ".join(f"{v['field'] or '(root)'}: {v['description']}" for v in violations[:5])
    return e.InvalidParams(f"Invalid params: {summary}", violations=violations)


def rpc_error(error: e.GatewayError, version: ProtocolVersion) -> tuple[int, str, Any]:
    """(code, message, data) of a JSON-RPC error; 1.0 data is a list of google.rpc details."""
    mapped = mapping_of(error)
    violations = error.violations if isinstance(error, e.InvalidParams) else []
    if version is ProtocolVersion.V0_3:
        return mapped.rpc_code, error.message, ({"violations": violations} if violations else None)
    if mapped.rpc_code in _STANDARD:
        return mapped.rpc_code, error.message, None
    details: list[dict[str, Any]] = [
        {
            "@type": ERROR_INFO,
            "reason": error.reason,
            "domain": mapped.domain,
            "metadata": dict(error.metadata),
        }
    ]
    if violations:
        details.append({"@type": BAD_REQUEST, "fieldViolations": violations})
    return mapped.rpc_code, error.message, details


def rpc_failure(
    request_id: jsonrpc.RequestId, error: e.GatewayError, version: ProtocolVersion
) -> dict[str, Any]:
    """A complete JSON-RPC error response for a GatewayError."""
    code, message, data = rpc_error(error, version)
    return jsonrpc.failure(request_id, code, message, data)


def internal(exc: BaseException, where: str) -> e.GatewayError:
    """Log an unexpected exception with the request id; the caller gets a generic message only."""
    if is_database_busy(exc):
        # Contention, not a bug: the caller may retry (503 with Retry-After), never a 500.
        log.warning("database locked in %s", where)
        return busy_error()
    log.error("unexpected error in %s", where, exc_info=exc)
    error = e.GatewayError("Internal error")
    error.reason = "INTERNAL"
    return error


def http_headers(error: e.GatewayError) -> dict[str, str]:
    """Headers that go with an error: WWW-Authenticate for 401, Retry-After and limits for 423/429."""
    if isinstance(error, e.Unauthenticated):
        return {"WWW-Authenticate": 'Bearer realm="a2a-gateway", charset="UTF-8"'}
    if isinstance(error, e.RateLimited):
        return {
            "Retry-After": str(max(1, round(error.retry_after))),
            "X-RateLimit-Limit": str(error.limit),
            "X-RateLimit-Remaining": str(error.remaining),
            "X-RateLimit-Reset": str(max(1, round(error.retry_after))),
        }
    if isinstance(error, e.AccountLocked):
        return {"Retry-After": str(int(error.retry_after) + 1)}
    if isinstance(error, e.Unavailable) and "retryAfter" in error.metadata:
        return {"Retry-After": error.metadata["retryAfter"]}
    return {}


def rest_body(error: e.GatewayError) -> tuple[int, dict[str, Any]]:
    """HTTP status and the NEXUS-style body ``{"error": {"code", "message"}}``."""
    mapped = mapping_of(error)
    body: dict[str, Any] = {"error": {"code": error.reason, "message": error.message}}
    if isinstance(error, e.InvalidParams) and error.violations:
        body["error"]["details"] = error.violations
    return mapped.http_status, body


def error_response(error: e.GatewayError) -> Response:
    """The REST error response: ``{"error": {"code", "message"}}`` with the mapped status and headers."""
    status, body = rest_body(error)
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=http_headers(error)
    )


def _status_reason(status: int) -> tuple[str, str]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "HTTP_ERROR", "HTTP error"
    return phrase.upper().replace(" ", "_").replace("-", "_"), phrase


async def _http_exception(request: Request, exc: Exception) -> Response:
    # Starlette raises these for unknown routes (404) and methods a route does not serve (405, with Allow).
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code, message = _status_reason(status)
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
    body = orjson.dumps({"error": {"code": code, "message": message}})
    if status in (204, 304):
        return Response(status_code=status, headers=headers)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    # A locked database becomes 503 here: it carries its Retry-After like every mapped error.
    return error_response(internal(exc, request.url.path))


def http_exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Starlette exception handlers giving 404, 405 and any unhandled error the REST error body."""
    return {HTTPException: _http_exception, Exception: _unhandled}
