"""Where the REST resources are mounted: one group of routes behind the REST error boundary.

The seeds' paths share no prefix that JSON-RPC, health and metrics do not also use (``/api/v1/a2a``,
``/api/v1/health``), so the group mounts at no prefix: it claims a request only when one of its own
routes matches it (fully, or by path with another method, which becomes 405), and every other request
goes on to the rest of the URL table untouched. JSON-RPC keeps its own error shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, NoMatchFound, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a2a_gateway.api.errors import error_response, internal
from a2a_gateway.errors import GatewayError


class RestResource(Protocol):
    """A REST resource: a class whose methods are endpoints, listed by its route table."""

    def routes(self) -> list[BaseRoute]:
        """The resource's route table."""
        ...


class RestErrors:
    """ASGI boundary: a GatewayError becomes the REST error body, anything unexpected a logged 500.

    Starlette's 404 and 405 pass through to the app's handlers, which give them the same body. An
    error after the response has started (a broken event stream) cannot become a body and is re-raised.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app; answer its error if it raised one before answering."""
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, tracked)
        except HTTPException:
            raise
        except GatewayError as error:
            if started:
                raise
            await error_response(error)(scope, receive, send)
        except Exception as exc:
            if started:
                raise
            # Logged with the request id (the request log middleware sets it around every call).
            await error_response(internal(exc, scope["path"]))(scope, receive, send)


class RestMount(BaseRoute):
    """The REST routes as one group, with one error boundary around them; paths stay as written."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = list(routes)
        self._app = RestErrors(Router(routes=self.routes, redirect_slashes=False))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FULL when one of the group's routes takes the request, PARTIAL when one has its path only."""
        best = Match.NONE
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {}
            if match is Match.PARTIAL:
                best = Match.PARTIAL
        return best, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path of a named route of the group."""
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch to the matching route inside the boundary."""
        await self._app(scope, receive, send)


def rest_mount(*resources: RestResource) -> RestMount:
    """The mount of ``resources``' route tables, in order."""
    return RestMount([route for resource in resources for route in resource.routes()])
