"""REST request and response bodies: the body model base, parsing with clear errors, ``{"data": ...}``."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.api.errors import from_validation
from a2a_gateway.api.http import read_body
from a2a_gateway.errors import InvalidParams
from a2a_gateway.protocol.nesting import check_nesting

B = TypeVar("B", bound=BaseModel)
BODY_LIMIT = 65_536


class RestBody(BaseModel):
    """A request body: camelCase or snake_case, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


def data(payload: Any, status: int = 200) -> Response:
    """``{"data": payload}``."""
    return Response(orjson.dumps({"data": payload}), status_code=status, media_type="application/json")


def page(items: list[Any], meta: dict[str, Any]) -> Response:
    """A list with its page metadata beside it: ``{"data": items, "meta": meta}``."""
    return Response(orjson.dumps({"data": items, "meta": meta}), media_type="application/json")


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


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter from ``low`` to ``high`` (``default`` when absent); InvalidParams
    naming it otherwise, also for a number too long to be one (never a 500)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    digits = raw[1:] if raw.startswith("-") else raw
    if not digits.isdigit() or len(digits) > 12 or not low <= int(raw) <= high:
        raise InvalidParams(
            f"{name} must be an integer from {low} to {high}",
            violations=[{"field": name, "description": f"{low} to {high}"}],
        )
    return int(raw)
