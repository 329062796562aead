"""The JSON-RPC endpoint: envelope check, version negotiation, a method table per version, SSE for streams."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.api import methods_v0_3, methods_v1
from a2a_gateway.api.cards import CardEndpoint
from a2a_gateway.api.context import CallContext
from a2a_gateway.api.errors import (
    TRANSPORT_STATUS,
    from_validation,
    http_headers,
    internal,
    mapping_of,
    rpc_failure,
)
from a2a_gateway.api.health import Drain
from a2a_gateway.api.http import raw_header, read_body
from a2a_gateway.api.metrics import Metrics
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.sse_stream import RpcEventStream
from a2a_gateway.api.streaming import STREAMING_METHODS, open_stream
from a2a_gateway.errors import (
    ContentTypeNotSupported,
    GatewayError,
    InvalidParams,
    MethodNotFound,
    ParseError,
    VersionNotSupported,
)
from a2a_gateway.protocol import jsonrpc
from a2a_gateway.protocol.nesting import MAX_DEPTH, check_nesting
from a2a_gateway.protocol.version import HEADER, ProtocolVersion, negotiate
from a2a_gateway.tasks.service import TaskService

log = logging.getLogger(__name__)
TASK_CREATION = frozenset({"SendMessage", "SendStreamingMessage", "message/send", "message/stream"})
ParamsHook = Callable[[str, dict[str, Any]], dict[str, Any]]
"""Rewrites the params of a request (method name, params) before it is checked and run."""


def _error_as_stream(method: str, error: GatewayError) -> bool:
    """Whether an error found before a stream starts is sent as that stream's only event.

    A 0.3 client reads tasks/resubscribe as an event stream whatever the task, as the 0.3 SDK serves it:
    an unknown or finished task is answered that way. Bad params and credentials stay plain JSON, as there.
    Every 1.0 up-front error is plain JSON.
    """
    return method == "tasks/resubscribe" and not isinstance(error, (InvalidParams, *TRANSPORT_STATUS))


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            # Valid JSON nested past orjson's own limit (1024), far beyond what params may hold.
            why = f"nested deeper than {MAX_DEPTH} levels"
            raise InvalidParams(
                f"Invalid params: the body is {why}", violations=[{"field": "params", "description": why}]
            ) from None
        raise ParseError("Parse error: the body is not valid JSON") from None


def json_media_type(value: str | None) -> bool:
    """Whether a Content-Type names JSON (application/json or a +json type); none at all is accepted too."""
    if value is None:
        return True
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response encoded with orjson."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class JsonRpcEndpoint:
    """Serves A2A 1.0 and 0.3 on one URL; the A2A-Version header picks the method table."""

    def __init__(
        self,
        service: TaskService,
        metrics: Metrics,
        max_body_bytes: int,
        *,
        authn: Authenticator,
        cards: CardEndpoint,
    ) -> None:
        self._service = service
        self._metrics = metrics
        self._limit = max_body_bytes
        self._authn = authn
        self._tables = {
            ProtocolVersion.V1_0: methods_v1.build(service, cards.extended_v1),
            ProtocolVersion.V0_3: methods_v0_3.build(service, cards.extended_v0_3),
        }
        self._scopes = {**methods_v1.SCOPES, **methods_v0_3.SCOPES}
        self._routed_reads = methods_v1.ROUTED_READS | methods_v0_3.ROUTED_READS
        self._streaming = {
            ProtocolVersion.V1_0: methods_v1.STREAMING,
            ProtocolVersion.V0_3: methods_v0_3.STREAMING,
        }
        # Metric labels come from this closed set so unknown method names cannot grow the label space.
        self._known: frozenset[str] = frozenset().union(*self._tables.values(), *self._streaming.values())

    @staticmethod
    def _as_gateway_error(exc: Exception, where: str) -> GatewayError:
        if isinstance(exc, GatewayError):
            return exc
        if isinstance(exc, ValidationError):
            return from_validation(exc)
        return internal(exc, where)

    async def handle(self, request: Request, params_hook: ParamsHook | None = None) -> Response:
        """Handle one POST; ``params_hook`` may rewrite a request's params (the per-agent proxy does)."""
        started = time.perf_counter()
        version = ProtocolVersion.V0_3
        request_id: jsonrpc.RequestId = None
        method = "-"
        try:
            body = await read_body(request, self._limit)
            decoded = _decode(body)
            request_id = jsonrpc.request_id_of(decoded)
            if isinstance(decoded, dict) and "params" in decoded and isinstance(decoded["params"], list):
                raise InvalidParams("params must be an object")
            envelope = jsonrpc.parse_envelope(decoded)
            if params_hook is not None:
                envelope = jsonrpc.Envelope(
                    envelope.id, envelope.method, params_hook(envelope.method, envelope.params)
                )
            method = envelope.method
            asked = raw_header(request, b"a2a-version")
            if asked is None and request.scope["query_string"]:
                asked = request.query_params.get(HEADER)
            if "id" not in decoded:
                # A notification is never answered (JSON-RPC 2.0), and here never run either: a task
                # started or changed this way could not be followed, and a read's result would be lost.
                return Response(status_code=204)
            try:
                version = negotiate(asked)
            except VersionNotSupported:
                # A client that sends a version header is a 1.0-era client: answer in the 1.0 error shape.
                version = ProtocolVersion.V1_0
                raise
            if not json_media_type(raw_header(request, b"content-type")):
                raise ContentTypeNotSupported(
                    "Content type not supported: a JSON-RPC request must be sent as application/json"
                )
            check_nesting(envelope.params, body)
            self._check_method(version, method)
            principal, caller = await self._authn.identify(request)
            principal.require(self._scopes[method], routed_tasks=method in self._routed_reads)
            if method in TASK_CREATION:
                client = request.client.host if request.client else None
                await self._authn.limiter.check("tasks:create", principal, client)
            ctx = CallContext(principal=principal, version=version, request_id=envelope.id, caller=caller)
            if method in STREAMING_METHODS:
                return await self._stream(ctx, envelope, Drain.of(request))
            response = await self._unary(ctx, envelope)
            self._metrics.rpc(self._label(method), "error" if "error" in response else "ok", started)
            return json_response(response)
        except Exception as exc:
            error = self._as_gateway_error(exc, method)
            self._metrics.rpc(self._label(method), "error", started)
            status = mapping_of(error).http_status if isinstance(error, TRANSPORT_STATUS) else 200
            return json_response(rpc_failure(request_id, error, version), status, http_headers(error))

    def _label(self, method: str) -> str:
        return method if method in self._known else "other"

    def _check_method(self, version: ProtocolVersion, method: str) -> None:
        if method in self._tables[version] or method in self._streaming[version]:
            return
        for other, table in self._tables.items():
            if other is not version and (method in table or method in self._streaming[other]):
                raise VersionNotSupported(
                    f"Method {method} belongs to A2A {other.value}; send the header "
                    f"A2A-Version: {other.value}",
                    metadata={"method": method, "requiredVersion": other.value},
                )
        raise MethodNotFound(f"Method not found: {method[:100]}")

    async def _unary(self, ctx: CallContext, envelope: jsonrpc.Envelope) -> dict[str, Any]:
        handler = self._tables[ctx.version][envelope.method]
        try:
            return jsonrpc.success(envelope.id, await handler(ctx, envelope.params))
        except TRANSPORT_STATUS:
            raise  # answered by handle() with its HTTP status and headers
        except Exception as exc:
            return rpc_failure(envelope.id, self._as_gateway_error(exc, envelope.method), ctx.version)

    async def _stream(self, ctx: CallContext, envelope: jsonrpc.Envelope, drain: Drain) -> Response:
        started = time.perf_counter()
        try:
            opened = await open_stream(self._service, ctx, envelope.method, envelope.params)
        except Exception as exc:
            error = self._as_gateway_error(exc, envelope.method)
            if not _error_as_stream(envelope.method, error):
                raise error from None  # answered as plain JSON by handle()
            self._metrics.rpc(self._label(envelope.method), "error", started)
            return EventSourceResponse(
                self._error_frame(ctx, error), ping=15, sep="\n", headers={"Cache-Control": "no-store"}
            )
        self._metrics.rpc(self._label(envelope.method), "ok", started)

        def failure(exc: Exception) -> bytes:
            error = self._as_gateway_error(exc, "stream")
            return orjson.dumps(rpc_failure(ctx.request_id, error, ctx.version))

        request_id = orjson.dumps(ctx.request_id)
        return RpcEventStream(
            opened, request_id, ctx.version, drain=drain, metrics=self._metrics, failure=failure
        )

    @staticmethod
    async def _error_frame(ctx: CallContext, error: GatewayError) -> AsyncIterator[ServerSentEvent]:
        body = rpc_failure(ctx.request_id, error, ctx.version)
        yield ServerSentEvent(data=orjson.dumps(body).decode(), event="error")
