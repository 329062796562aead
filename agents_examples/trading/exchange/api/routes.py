"""The Agent Connect REST API (seed ``001_…``) as a Starlette app, mounted at ``/v1/agent``.

Every request goes through :meth:`AgentConnectApi._guard`, in this order: the body is read (at most
``MAX_BODY_BYTES``, else 413 ``PAYLOAD_TOO_LARGE``); ``X-NX-Key`` is looked up by its SHA-256 (401
``UNAUTHENTICATED`` when missing or unknown); the key's budget of 60 requests a minute is spent (429
``RATE_LIMITED`` with ``Retry-After`` and the ``X-RateLimit-*`` headers the gateway writes); the
signature is checked: a live key (``nx_live_``) must sign every request, a sandbox key (``nx_test_``)
may, and a signature sent is checked either way (401 ``INVALID_SIGNATURE``): ``X-NX-Signature =
hex(HMAC-SHA256(secret, X-NX-Timestamp + METHOD + path + body))`` with ``path`` relative to the mount
point (``/market``), no query string, over the exact body bytes, the timestamp (ms) within 30 s of
wall time, each signature accepted once; then the route's permission (403 ``PERMISSION_DENIED``).

Errors are always ``{"error": {"code", "message"}}`` (an order the engine rejected adds ``order``);
amounts are exact JSON numbers (:mod:`.jsonenc`).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from a2a_gateway.auth.rate_limit import Limit, MemoryRateLimitStore, RateLimitStore
from a2a_gateway.auth.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MemoryNonceStore,
    NonceStore,
    verify_signature,
)
from a2a_gateway.errors import Unauthenticated
from agents_examples.trading.exchange.api import sentiment
from agents_examples.trading.exchange.api.jsonenc import dumps
from agents_examples.trading.exchange.engine import (
    ClientOrderIdConflict,
    ExchangeError,
    Order,
    OrderNotFound,
    OrderNotOpen,
    OrderRequest,
    OrderStatus,
    units_decimal,
)
from agents_examples.trading.exchange.market.instruments import UnknownInstrumentError
from agents_examples.trading.exchange.service import MODES, PERMISSIONS, ExchangeService
from agents_examples.trading.exchange.store import AccountRecord, WebhookRecord
from agents_examples.trading.exchange.webhooks import WebhookError

log = logging.getLogger(__name__)

API_PREFIX: Final = "/v1/agent"
MAX_BODY_BYTES: Final = 64 * 1024
RATE_LIMIT: Final = Limit(count=60, period_seconds=60.0)
RATE_LIMIT_TEXT: Final = "60 requests/min"
SIGNATURE_WINDOW_MS: Final = 30_000
REGISTRATION_TOKEN_HEADER: Final = "X-NX-Registration-Token"  # noqa: S105 (a header name)
MAX_NAME: Final = 100
MAX_LIST: Final = 500
ORDER_FIELDS: Final = frozenset({"symbol", "side", "type", "quantity", "price", "clientOrderId"})
WEBHOOK_FIELDS: Final = frozenset({"url", "events"})
REGISTER_FIELDS: Final = frozenset(
    {"name", "permissions", "mode", "dailyLossLimit", "maxPositionSize", "social"}
)
_STATUS_OF: Final[Mapping[type[ExchangeError], int]] = {
    OrderNotFound: 404,
    OrderNotOpen: 409,
    ClientOrderIdConflict: 409,
}


class ApiError(Exception):
    """An error answer: HTTP status, stable code, message for people."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def json_response(status: int, doc: object, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response written by :func:`.jsonenc.dumps`."""
    return Response(dumps(doc), status, headers=dict(headers or {}), media_type="application/json")


def error_response(error: ApiError, extra: Mapping[str, Any] | None = None) -> Response:
    """The one error shape."""
    doc: dict[str, Any] = {"error": {"code": error.code, "message": error.message}}
    if extra:
        doc.update(extra)
    return json_response(error.status, doc, error.headers)


@dataclass(frozen=True, slots=True)
class Call:
    """An authenticated request: who makes it and the body it sent."""

    account: AccountRecord
    body: bytes
    headers: dict[str, str]


Handler = Callable[[Request, Call], Awaitable[Response]]


def route_path(request: Request) -> str:
    """The request's path relative to where the API is mounted (what clients sign), without query."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def read_body(request: Request) -> bytes:
    """The body, refused past MAX_BODY_BYTES before reading more than that."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body must be at most {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body must be at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_object(body: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    """A JSON object body with only ``allowed`` fields (400 otherwise)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "INVALID_JSON", "the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "INVALID_REQUEST", "the body must be a JSON object")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ApiError(400, "INVALID_REQUEST", f"unknown fields: {', '.join(unknown)}")
    return doc


def order_doc(view: dict[str, Any]) -> dict[str, Any]:
    """The engine's CCXT view with the seed's ``orderId`` first."""
    return {"orderId": view["id"], **view}


class AgentConnectApi:
    """The routes over one :class:`ExchangeService`."""

    def __init__(
        self,
        service: ExchangeService,
        *,
        rate_store: RateLimitStore | None = None,
        nonces: NonceStore | None = None,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.service = service
        self.rates = rate_store or MemoryRateLimitStore()
        self.nonces = nonces or MemoryNonceStore()
        self.wall_ms = wall_ms

    # --------------------------------------------------------------------------- the guard

    async def _spend(self, who: str) -> dict[str, str]:
        decision = await self.rates.hit(who, RATE_LIMIT, self.wall_ms() / 1000)
        if not decision.allowed:
            wait = str(max(1, round(decision.retry_after)))
            raise ApiError(
                429,
                "RATE_LIMITED",
                f"rate limit of {RATE_LIMIT_TEXT} exceeded; retry in {wait} s",
                headers={
                    "Retry-After": wait,
                    "X-RateLimit-Limit": str(decision.limit),
                    "X-RateLimit-Remaining": str(decision.remaining),
                    "X-RateLimit-Reset": wait,
                },
            )
        return {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}

    async def _authenticate(self, request: Request, body: bytes, permission: str | None) -> Call:
        key = request.headers.get(HEADER_KEY)
        account = self.service.by_key(key) if key else None
        if account is None:
            raise ApiError(401, "UNAUTHENTICATED", f"a valid {HEADER_KEY} header is required")
        signature = request.headers.get(HEADER_SIGNATURE)
        headers = await self.admit(
            account,
            permission,
            signed=account.mode == "live" or signature is not None,
            method=request.method,
            path=route_path(request),
            body=body,
            timestamp=request.headers.get(HEADER_TIMESTAMP),
            signature=signature,
        )
        return Call(account, body, headers)

    async def admit(
        self,
        account: AccountRecord,
        permission: str | None,
        *,
        signed: bool,
        method: str,
        path: str,
        body: bytes,
        timestamp: str | None,
        signature: str | None,
    ) -> dict[str, str]:
        """The guard after the key lookup, shared by the REST routes and the A2A skills: the key's rate
        budget, the signature when ``signed`` (one nonce store, so a signature is accepted once whichever
        way it arrives), then ``permission``. Returns the rate-limit headers; raises :class:`ApiError`."""
        headers = await self._spend(f"key:{account.id}")
        if signed:
            try:
                await verify_signature(
                    secret=account.secret,
                    method=method,
                    path=path,
                    body=body,
                    timestamp=timestamp,
                    signature=signature,
                    key_id=account.id,
                    nonces=self.nonces,
                    now_ms=self.wall_ms(),
                    window_ms=SIGNATURE_WINDOW_MS,
                )
            except Unauthenticated as error:
                raise ApiError(401, "INVALID_SIGNATURE", str(error), headers=headers) from None
        if permission is not None and permission not in account.permissions:
            raise ApiError(
                403, "PERMISSION_DENIED", f"this key lacks the {permission} permission", headers=headers
            )
        return headers

    def guarded(self, permission: str | None, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the guard, its errors in the one shape."""

        async def endpoint(request: Request) -> Response:
            headers: dict[str, str] = {}
            try:
                body = await read_body(request)
                call = await self._authenticate(request, body, permission)
                headers = call.headers
                response = await handler(request, call)
            except ApiError as error:
                error.headers = {**headers, **error.headers}
                return error_response(error)
            except UnknownInstrumentError as error:
                return error_response(ApiError(400, error.code, str(error), headers=headers))
            except ExchangeError as error:
                status = _STATUS_OF.get(type(error), 422)
                return error_response(ApiError(status, error.code, error.message, headers=headers))
            response.headers.update(headers)
            return response

        return endpoint

    # ------------------------------------------------------------------------------ routes

    async def register(self, request: Request) -> Response:
        """``POST /register``: open registration for sandbox, a registration token for live."""
        try:
            client = request.client.host if request.client else "unknown"
            await self._spend(f"register:{client}")
            doc = parse_object(await read_body(request), REGISTER_FIELDS)
            name = doc.get("name")
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
                raise ApiError(400, "INVALID_REQUEST", f"name must be 1..{MAX_NAME} characters")
            permissions = doc.get("permissions", [])
            if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
                raise ApiError(400, "INVALID_REQUEST", "permissions must be a list of strings")
            unknown = [p for p in permissions if p not in PERMISSIONS]
            if unknown:
                raise ApiError(
                    400,
                    "INVALID_PERMISSION",
                    f"unknown permissions {unknown}; known: {', '.join(PERMISSIONS)}",
                )
            mode = doc.get("mode", "sandbox")
            if mode not in MODES:
                raise ApiError(400, "INVALID_REQUEST", "mode must be 'sandbox' or 'live'")
            social = doc.get("social", False)
            if not isinstance(social, bool):
                raise ApiError(400, "INVALID_REQUEST", "social must be true or false")
            limits = {}
            for field in ("dailyLossLimit", "maxPositionSize"):
                value = doc.get(field)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float | str)
                ):
                    raise ApiError(400, "INVALID_REQUEST", f"{field} must be a positive number or null")
                limits[field] = (
                    None if value is None else (repr(value) if isinstance(value, float) else str(value))
                )
            if mode == "live":
                self._check_registration_token(request)
            try:
                registered = self.service.register(
                    name.strip(),
                    dict.fromkeys(permissions),
                    mode,
                    daily_loss_limit=limits["dailyLossLimit"],
                    max_position_size=limits["maxPositionSize"],
                    social=social,
                )
            except ValueError as error:
                raise ApiError(400, "INVALID_REQUEST", str(error)) from None
        except ApiError as error:
            return error_response(error)
        account = registered.account
        portfolio = self.service.engine.portfolio(account.id)
        return json_response(
            201,
            {
                "agent": {
                    "id": account.id,
                    "name": account.name,
                    "apiKey": registered.api_key,
                    "apiSecret": account.secret,
                    "permissions": list(account.permissions),
                    "mode": account.mode,
                    "rateLimit": RATE_LIMIT_TEXT,
                    "social": account.social,
                    "limits": {
                        "dailyLossLimit": portfolio["limits"]["dailyLossLimit"],
                        "maxPositionSize": portfolio["limits"]["maxPositionSize"],
                    },
                    "startingCash": portfolio["cash"],
                }
            },
        )

    def _check_registration_token(self, request: Request) -> None:
        expected = self.service.registration_token
        if not expected:
            raise ApiError(
                403,
                "LIVE_REGISTRATION_CLOSED",
                "this exchange issues no live accounts (no registration token)",
            )
        given = request.headers.get(REGISTRATION_TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(
                403,
                "REGISTRATION_TOKEN_REQUIRED",
                f"a live account needs the operator's token in {REGISTRATION_TOKEN_HEADER}",
            )

    async def market(self, request: Request, call: Call) -> Response:
        """``GET /market?coins=``."""
        return json_response(200, self.market_doc(request.query_params.get("coins")))

    def market_doc(self, coins: str | None) -> dict[str, Any]:
        """What ``GET /market?coins=`` answers (shared with the ``market-data`` skill)."""
        service = self.service
        instruments = service.instruments.parse_coins(coins)
        data = []
        provenance = []
        for instrument in instruments:
            stats = service.simulator.stats(instrument.symbol)
            source = service.simulator.provenance(instrument.symbol)
            data.append(
                {
                    "symbol": instrument.symbol,
                    "id": instrument.id,
                    "name": instrument.name,
                    "tokenAddress": instrument.token_address,
                    "quote": instrument.quote,
                    "price": units_decimal(stats.price),
                    "change24h": stats.change24h,
                    "volume24h": units_decimal(stats.volume24h),
                    "high24h": units_decimal(stats.high24h),
                    "low24h": units_decimal(stats.low24h),
                    "open24h": units_decimal(stats.open24h),
                    "timestamp": stats.ts_ms,
                    "source": source.label,
                    "window": {"ms": stats.window_ms, "full24h": stats.full_window},
                }
            )
            provenance.append(source.as_dict())
        labels = sorted({str(p["label"]) for p in provenance})
        return {
            "data": data,
            "meta": {
                "source": labels[0] if len(labels) == 1 else "mixed",
                "simulatedTime": service.now_ms,
                "statsWindow": "the last 24 hours of simulated time, or the replayed window when "
                "shorter (window.full24h false)",
                "volumeUnit": "base asset",
                "provenance": provenance,
            },
        }

    async def portfolio(self, request: Request, call: Call) -> Response:
        """``GET /portfolio``."""
        return json_response(200, {"data": self.service.engine.portfolio(call.account.id)})

    async def place_order(self, request: Request, call: Call) -> Response:
        """``POST /orders``: 201 with the order; an order the engine rejected is 422 with its code."""
        request_ = self.order_request(parse_object(call.body, ORDER_FIELDS))
        service = self.service
        order = service.engine.place(call.account.id, request_, service.now_ms)
        service.changed()
        view = order_doc(service.engine.order_view(order))
        if order.status is OrderStatus.REJECTED:
            error = ApiError(422, order.reason or "REJECTED", order.message or "the order was rejected")
            error.headers = call.headers
            return error_response(error, {"order": view})
        return json_response(201, {"order": view})

    def order_request(self, doc: dict[str, Any]) -> OrderRequest:
        """An order body's fields as an engine request (ApiError, UnknownInstrumentError or the
        engine's InvalidOrder when they are not one); shared with the ``place-order`` skill."""
        symbol = doc.get("symbol")
        if not isinstance(symbol, str):
            raise ApiError(400, "INVALID_REQUEST", "symbol must be a string")
        for field in ("side", "type"):
            if not isinstance(doc.get(field), str):
                raise ApiError(400, "INVALID_REQUEST", f"{field} must be a string")
        if "quantity" not in doc:
            raise ApiError(400, "INVALID_REQUEST", "quantity is required")
        instrument = self.service.instruments.get(symbol)
        return OrderRequest.create(
            instrument.symbol,
            doc["side"],
            doc["type"],
            doc["quantity"],
            price=doc.get("price"),
            client_order_id=doc.get("clientOrderId"),
        )

    def _views(self, orders: list[Order], request: Request) -> list[dict[str, Any]]:
        limit = self._limit(request)
        engine = self.service.engine
        return [order_doc(engine.order_view(order)) for order in orders[-limit:]]

    @staticmethod
    def _limit(request: Request) -> int:
        raw = request.query_params.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
            raise ApiError(400, "INVALID_REQUEST", f"limit must be 1..{MAX_LIST}")
        return int(raw)

    async def list_orders(self, request: Request, call: Call) -> Response:
        """``GET /orders?status=&limit=``: the most recent orders, oldest first."""
        status = request.query_params.get("status")
        if status is not None and status not in {s.value for s in OrderStatus}:
            raise ApiError(400, "INVALID_REQUEST", "status must be open, closed, canceled or rejected")
        orders = self.service.engine.orders(call.account.id, status)
        return json_response(200, {"data": self._views(orders, request)})

    async def get_order(self, request: Request, call: Call) -> Response:
        """``GET /orders/{id}``."""
        engine = self.service.engine
        order = engine.order(call.account.id, request.path_params["order_id"])
        return json_response(200, {"order": order_doc(engine.order_view(order))})

    async def cancel_order(self, request: Request, call: Call) -> Response:
        """``DELETE /orders/{id}``."""
        service = self.service
        order = service.engine.cancel(call.account.id, request.path_params["order_id"], service.now_ms)
        service.changed()
        return json_response(200, {"order": order_doc(service.engine.order_view(order))})

    async def trades(self, request: Request, call: Call) -> Response:
        """``GET /trades?limit=``: the most recent fills, oldest first."""
        limit = self._limit(request)
        engine = self.service.engine
        trades = engine.trades(call.account.id)[-limit:]
        return json_response(200, {"data": [engine.trade_view(trade) for trade in trades]})

    async def sentiment(self, request: Request, call: Call) -> Response:
        """``GET /sentiment?coins=``: see :mod:`.sentiment`."""
        service = self.service
        data = []
        for instrument in service.instruments.parse_coins(request.query_params.get("coins")):
            data.append(
                {
                    "symbol": instrument.symbol,
                    "id": instrument.id,
                    **sentiment.score(service.closes(instrument.symbol)),
                    "timestamp": service.now_ms,
                    "source": service.simulator.provenance(instrument.symbol).label,
                }
            )
        return json_response(200, {"data": data, "meta": {"method": sentiment.METHOD}})

    async def social(self, request: Request, call: Call) -> Response:
        """``GET /social?limit=``: recent fills of accounts that opted in (``social`` at registration),
        newest first."""
        limit = self._limit(request)
        feed = list(self.service.social)[-limit:]
        feed.reverse()
        return json_response(
            200,
            {
                "data": feed,
                "meta": {"note": "fills of accounts registered with social: true, newest first, in memory"},
            },
        )

    @staticmethod
    def _webhook_doc(hook: WebhookRecord) -> dict[str, Any]:
        return {"id": hook.id, "url": hook.url, "events": list(hook.events), "createdAt": hook.created_ms}

    async def add_webhook(self, request: Request, call: Call) -> Response:
        """``POST /webhooks {url, events?}``: 201 with the webhook and its signing secret (shown once)."""
        doc = parse_object(call.body, WEBHOOK_FIELDS)
        try:
            hook = await self.service.webhooks.register(call.account.id, doc.get("url"), doc.get("events"))
        except WebhookError as error:
            status = 409 if error.code == "TOO_MANY_WEBHOOKS" else 400
            raise ApiError(status, error.code, error.message) from None
        return json_response(201, {"webhook": {**self._webhook_doc(hook), "secret": hook.secret}})

    async def list_webhooks(self, request: Request, call: Call) -> Response:
        """``GET /webhooks``: the account's webhooks (no secrets)."""
        hooks = self.service.webhooks.list(call.account.id)
        return json_response(200, {"data": [self._webhook_doc(h) for h in hooks]})

    async def delete_webhook(self, request: Request, call: Call) -> Response:
        """``DELETE /webhooks/{id}``."""
        webhook_id = request.path_params["webhook_id"]
        if not self.service.webhooks.delete(call.account.id, webhook_id):
            raise ApiError(404, "WEBHOOK_NOT_FOUND", "no webhook by that id")
        return json_response(200, {"deleted": webhook_id})

    def app(self) -> Starlette:
        """The Starlette app, to be mounted at :data:`API_PREFIX`."""
        g = self.guarded
        routes = [
            Route("/register", self.register, methods=["POST"]),
            Route("/market", g("read:market", self.market), methods=["GET"]),
            Route("/portfolio", g("read:portfolio", self.portfolio), methods=["GET"]),
            Route("/orders", g("write:orders", self.place_order), methods=["POST"]),
            Route("/orders", g("read:portfolio", self.list_orders), methods=["GET"]),
            Route("/orders/{order_id}", g("read:portfolio", self.get_order), methods=["GET"]),
            Route("/orders/{order_id}", g("write:orders", self.cancel_order), methods=["DELETE"]),
            Route("/trades", g("read:portfolio", self.trades), methods=["GET"]),
            Route("/sentiment", g("read:sentiment", self.sentiment), methods=["GET"]),
            Route("/social", g("read:social", self.social), methods=["GET"]),
            Route("/webhooks", g("write:webhook", self.add_webhook), methods=["POST"]),
            Route("/webhooks", g("write:webhook", self.list_webhooks), methods=["GET"]),
            Route("/webhooks/{webhook_id}", g("write:webhook", self.delete_webhook), methods=["DELETE"]),
        ]

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
            return error_response(ApiError(exc.status_code, code, str(exc.detail)), None)

        async def internal(request: Request, exc: Exception) -> Response:
            log.exception("internal error on %s %s", request.method, route_path(request), exc_info=exc)
            return error_response(ApiError(500, "INTERNAL", "internal error"))

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: internal})
