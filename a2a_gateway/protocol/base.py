"""Shared pydantic configuration for ProtoJSON-style wire models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Parses camelCase and snake_case, ignores unknown fields, emits camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=False,
        ser_json_bytes="base64",
    )

    def wire(self) -> dict[str, Any]:
        """This object as a JSON-ready dict: camelCase keys, unset fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def wire_json(self) -> bytes:
        """The same as ``wire()``, serialized straight to JSON bytes (no intermediate dict)."""
        return self.__pydantic_serializer__.to_json(self, by_alias=True, exclude_none=True)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a trailing ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat is several times faster than strftime; this sits on every serialized status.
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _parse_timestamp(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
"""A UTC instant; parses any RFC 3339 form and emits ``...sssZ``."""


def utc_now() -> datetime:
    """The current instant in UTC."""
    return datetime.now(UTC)
