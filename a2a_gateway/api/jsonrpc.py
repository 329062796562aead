"""The JSON-RPC endpoint: our own envelope check, jsonrpcserver for unary methods, SSE for streams."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from jsonrpcserver import Error, Success, async_dispatch_to_serializable
from jsonrpcserver.methods import Method
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.api import methods_v0_3, methods_v1
from a2a_gateway.api.context import ANONYMOUS, CallContext
from a2a_gateway.api.errors import from_validation, internal, rpc_error, rpc_failure
from a2a_gateway.api.metrics import Metrics
from a2a_gateway.api.streaming import STREAMING_METHODS, OpenStream, open_stream
from a2a_gateway.errors import (
    GatewayError,
    InvalidParams,
    MethodNotFound,
    ParseError,
    PayloadTooLarge,
    VersionNotSupported,
)
from a2a_gateway.protocol import jsonrpc
from a2a_gateway.protocol.version import HEADER, ProtocolVersion, negotiate
from a2a_gateway.tasks.service import TaskService

log = logging.getLogger(__name__)
_PASS = lambda value: value  # noqa: E731  envelope already validated by parse_envelope


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response encoded with orjson."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class JsonRpcEndpoint:
    """Serves A2A 1.0 and 0.3 on one URL; the A2A-Version header picks the method table."""

    def __init__(self, service: TaskService, metrics: Metrics, max_body_bytes: int) -> None:
        self._service = service
        self._metrics = metrics
        self._limit = max_body_bytes
        self._tables = {
            ProtocolVersion.V1_0: self._wrap(methods_v1.build(service)),
            ProtocolVersion.V0_3: self._wrap(methods_v0_3.build(service)),
        }
        self._streaming = {
            ProtocolVersion.V1_0: methods_v1.STREAMING,
            ProtocolVersion.V0_3: methods_v0_3.STREAMING,
        }
        # Metric labels come from this closed set so unknown method names cannot grow the label space.
        self._known: frozenset[str] = frozenset().union(*self._tables.values(), *self._streaming.values())

    def _wrap(self, table: dict[str, methods_v1.Handler]) -> dict[str, Method]:
        def adapt(name: str, handler: methods_v1.Handler) -> Method:
            async def call(ctx: CallContext, params: dict[str, Any]) -> Any:
                try:
                    return Success(await handler(ctx, params))
                except Exception as exc:
                    code, message, data = rpc_error(self._as_gateway_error(exc, name), ctx.version)
                    return Error(code, message, data) if data is not None else Error(code, message)

            return call

        return {name: adapt(name, handler) for name, handler in table.items()}

    @staticmethod
    def _as_gateway_error(exc: Exception, where: str) -> GatewayError:
        if isinstance(exc, GatewayError):
            return exc
        if isinstance(exc, ValidationError):
            return from_validation(exc)
        return internal(exc, where)

    async def handle(self, request: Request) -> Response:
        """Handle one POST."""
        started = time.perf_counter()
        version = ProtocolVersion.V0_3
        request_id: jsonrpc.RequestId = None
        method = "-"
        try:
            body = await read_body(request, self._limit)
            try:
                decoded = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise ParseError("Parse error: the body is not valid JSON") from None
            request_id = jsonrpc.request_id_of(decoded)
            if isinstance(decoded, dict) and "params" in decoded and isinstance(decoded["params"], list):
                raise InvalidParams("params must be an object")
            envelope = jsonrpc.parse_envelope(decoded)
            method = envelope.method
            asked = request.headers.get(HEADER) or request.query_params.get(HEADER)
            try:
                version = negotiate(asked)
            except VersionNotSupported:
                # A client that sends a version header is a 1.0-era client: answer in the 1.0 error shape.
                version = ProtocolVersion.V1_0
                raise
            ctx = CallContext(owner=ANONYMOUS, version=version, request_id=envelope.id)
            self._check_method(version, method)
            if method in STREAMING_METHODS:
                return await self._stream(ctx, envelope)
            response = await self._unary(ctx, envelope, decoded)
            self._metrics.rpc(self._label(method), "error" if "error" in (response or {}) else "ok", started)
            if response is None:
                return Response(status_code=204)
            return json_response(response)
        except Exception as exc:
            error = self._as_gateway_error(exc, method)
            self._metrics.rpc(self._label(method), "error", started)
            status = 413 if isinstance(error, PayloadTooLarge) else 200
            return json_response(rpc_failure(request_id, error, version), status=status)

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

    async def _unary(
        self, ctx: CallContext, envelope: jsonrpc.Envelope, decoded: dict[str, Any]
    ) -> dict[str, Any] | None:
        prepared: dict[str, Any] = {"jsonrpc": "2.0", "method": envelope.method, "params": [envelope.params]}
        if "id" in decoded:
            prepared["id"] = envelope.id
        result = await async_dispatch_to_serializable(
            "", self._tables[ctx.version], context=ctx, deserializer=lambda _: prepared, validator=_PASS
        )
        assert not isinstance(result, list)
        return result

    async def _stream(self, ctx: CallContext, envelope: jsonrpc.Envelope) -> Response:
        started = time.perf_counter()
        opened = await open_stream(self._service, ctx, envelope.method, envelope.params)
        self._metrics.rpc(self._label(envelope.method), "ok", started)
        return EventSourceResponse(
            self._frames(opened, ctx), ping=15, sep="\n", headers={"Cache-Control": "no-store"}
        )

    async def _frames(self, opened: OpenStream, ctx: CallContext) -> AsyncIterator[ServerSentEvent]:
        self._metrics.streams_open += 1
        try:
            async for result in opened.results():
                yield ServerSentEvent(data=orjson.dumps(jsonrpc.success(ctx.request_id, result)).decode())
        except Exception as exc:
            error = self._as_gateway_error(exc, "stream")
            body = rpc_failure(ctx.request_id, error, ctx.version)
            yield ServerSentEvent(data=orjson.dumps(body).decode(), event="error")
        finally:
            self._metrics.streams_open -= 1
            opened.close()
