"""The engine's REST API (Nexgent's, seed ``000_…``), meant to be mounted at ``/api/v1``.

:class:`EngineApi` gathers the resources' routes (:mod:`.agent_routes`, :mod:`.ledger_routes`,
:mod:`.signal_routes`, :mod:`.wallet_routes`, :mod:`.ops_routes`, :mod:`.account_routes`) and wraps
every endpoint the same way:

1. the credential, unless the route is public: the gateway's, through ``auth`` (401
   ``UNAUTHENTICATED`` without a valid one);
2. the credential's permission for the route (:mod:`.access`: API keys may read and post signals,
   every other write is 403 ``JWT_REQUIRED``);
3. the handler, whose :class:`~agents_examples.trading.engine.errors.EngineError` becomes the seed's
   error answer; anything unexpected is logged (never a body) and answered 500 ``INTERNAL_ERROR``;
4. the answer is counted for ``/metrics`` by method and status.

A path under the mount that no route serves is 404 ``NOT_FOUND``; one served for other methods is 405
``METHOD_NOT_ALLOWED`` with ``Allow``; both in the seed's error shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from a2a_gateway.errors import Unauthenticated
from agents_examples.trading.engine.api.access import (
    ANONYMOUS_CALL,
    Access,
    Call,
    CredentialSource,
    Spec,
    permit,
)
from agents_examples.trading.engine.api.account_routes import AccountRoutes
from agents_examples.trading.engine.api.agent_routes import AgentRoutes
from agents_examples.trading.engine.api.forward import GatewayForwarder
from agents_examples.trading.engine.api.ledger_routes import LedgerRoutes
from agents_examples.trading.engine.api.metrics import RequestCounts
from agents_examples.trading.engine.api.ops_routes import FeedStatus, OperationsRoutes
from agents_examples.trading.engine.api.ratelimit import SlidingWindow
from agents_examples.trading.engine.api.responses import error_response, refusal
from agents_examples.trading.engine.api.signal_routes import SIGNALS_PER_MINUTE, SignalRoutes
from agents_examples.trading.engine.api.wallet_routes import WalletRoutes
from agents_examples.trading.engine.errors import EngineError
from agents_examples.trading.engine.service import EngineService

log = logging.getLogger(__name__)

ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="trading-engine"'}

Endpoint = Callable[[Request], Awaitable[Response]]


class EngineApi:
    """Nexgent's ``/api/v1`` over one :class:`EngineService` (module doc).

    ``forwarder`` reaches the gateway for ``/auth`` and ``/api-keys`` (None: those answer 502);
    ``feed_status`` gives the price feed's state for the health and data-source routes;
    ``websocket_connections`` the open WebSocket count for ``/metrics``; ``clock`` drives the signal
    rate limit (monotonic seconds)."""

    def __init__(
        self,
        service: EngineService,
        auth: CredentialSource,
        forwarder: GatewayForwarder | None = None,
        *,
        version: str,
        feed_status: FeedStatus | None = None,
        websocket_connections: Callable[[], int] | None = None,
        signals_per_minute: int = SIGNALS_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.auth = auth
        self.requests = RequestCounts()
        self.limiter = SlidingWindow(signals_per_minute, 60.0, clock=clock)
        operations = OperationsRoutes(
            service,
            self.requests,
            version=version,
            gateway_configured=forwarder is not None,
            feed_status=feed_status,
            websocket_connections=websocket_connections,
        )
        self.specs: list[Spec] = [
            *operations.specs(),
            *AccountRoutes(forwarder).specs(),
            *AgentRoutes(service).specs(),
            *LedgerRoutes(service).specs(),
            *SignalRoutes(service, self.limiter).specs(),
            *WalletRoutes(service).specs(),
        ]

    def routes(self) -> list[BaseRoute]:
        """The route table, to mount at ``/api/v1``; the last route answers what no other one serves."""
        served: list[BaseRoute] = [
            Route(spec.path, self._endpoint(spec), methods=list(spec.methods)) for spec in self.specs
        ]
        fallback = Route("/{path:path}", self._unmatched(served), methods=ALL_METHODS)
        return [*served, fallback]

    # ------------------------------------------------------------------------------ wrapping

    def _endpoint(self, spec: Spec) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                response = await self._answer(request, spec)
            except Exception:
                log.exception("%s %s failed", request.method, spec.path)
                response = error_response(500, "INTERNAL_ERROR", "Internal error")
            self.requests.count(request.method, response.status_code)
            return response

        return endpoint

    async def _answer(self, request: Request, spec: Spec) -> Response:
        call = ANONYMOUS_CALL
        if spec.access is not Access.PUBLIC:
            try:
                credential = await self.auth.credential(request)
            except Unauthenticated as refused:
                return error_response(401, "UNAUTHENTICATED", refused.message, CHALLENGE)
            caller = credential.caller
            if not caller.user:
                return error_response(401, "UNAUTHENTICATED", "The credential names no user", CHALLENGE)
            call = Call(caller, caller.user)
        try:
            permit(spec.access, call)
            return await spec.handler(request, call)
        except EngineError as refused:
            return refusal(refused)

    def _unmatched(self, served: list[BaseRoute]) -> Endpoint:
        async def unmatched(request: Request) -> Response:
            allowed: set[str] = set()
            for route in served:
                match, _ = route.matches(request.scope)
                if match is Match.PARTIAL and isinstance(route, Route) and route.methods:
                    allowed |= route.methods
            if allowed:
                response = error_response(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"{request.method} is not served here",
                    {"Allow": ", ".join(sorted(allowed))},
                )
            else:
                response = error_response(404, "NOT_FOUND", "No such route")
            self.requests.count(request.method, response.status_code)
            return response

        return unmatched
