"""REST request and response bodies: the body model base, parsing with clear errors, ``{"data": ...}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.api.errors import error_response, from_validation, internal
from a2a_gateway.api.http import read_body
from a2a_gateway.errors import GatewayError, InvalidParams
from a2a_gateway.protocol.nesting import check_nesting

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
B = TypeVar("B", bound=BaseModel)
BODY_LIMIT = 65_536


class RestBody(BaseModel):
    """A request body: camelCase or snake_case, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


def data(payload: Any, status: int = 200) -> Response:
    """``{"data": payload}``."""
    return Response(orjson.dumps({"data": payload}), status_code=status, media_type="application/json")


async def parse(request: Request, model: type[B]) -> B:
    """The JSON body validated into ``model``; InvalidParams names bad fields, never echoing values."""
    raw = await read_body(request, BODY_LIMIT)
    try:
        decoded = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidParams("The body is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise InvalidParams("The body must be a JSON object")
    check_nesting(decoded, raw, root="")
    try:
        return model.model_validate(decoded)
    except ValidationError as exc:
        raise from_validation(exc) from None


def rest(handler: Handler) -> Handler:
    """Route wrapper: domain errors become REST error bodies; anything else a generic 500."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except GatewayError as error:
            return error_response(error)
        except Exception as exc:
            return error_response(internal(exc, request.url.path))

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run
