"""What clients may write about an agent: validated, with server-owned fields simply not accepted."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

MAX_METADATA_BYTES = 16_384


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class SkillBody(_Body):
    """A skill as registered."""

    id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    input_schema: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] = Field(default_factory=dict)
    # Credits per call of this skill; None means the agent's pricePerTask.
    price: int | None = Field(default=None, ge=0, le=1_000_000_000, strict=True)


def _check_endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("endpoint must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ValueError("endpoint must not carry credentials")
    return value.rstrip("/")


def metadata_fits(value: dict[str, Any]) -> bool:
    """Whether agent metadata is within MAX_METADATA_BYTES as JSON (PATCH, PUT and merged heartbeats)."""
    return len(orjson.dumps(value)) <= MAX_METADATA_BYTES


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if not metadata_fits(value):
        raise ValueError(f"metadata is limited to {MAX_METADATA_BYTES} bytes of JSON")
    return value


class AgentPatch(_Body):
    """PATCH body: every writable field is optional. Trust, status and owner are not writable."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    endpoint: str | None = Field(default=None, max_length=2048)
    skills: list[SkillBody] | None = Field(default=None, max_length=100)
    tags: list[str] | None = Field(default=None, max_length=20)
    category: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] | None = None
    price_per_task: int | None = Field(default=None, ge=0, le=1_000_000_000)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_endpoint(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _check_metadata(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not t.strip() or len(t) > 50 for t in value):
            raise ValueError("tags must be 1 to 50 characters")
        return value

    @model_validator(mode="after")
    def _unique_skills(self) -> AgentPatch:
        if self.skills is not None and len({s.id for s in self.skills}) != len(self.skills):
            raise ValueError("skill ids must be unique")
        return self


class AgentRegistration(AgentPatch):
    """POST body: name, endpoint and at least one skill are required."""

    name: str = Field(min_length=1, max_length=100)
    endpoint: str = Field(max_length=2048)
    skills: list[SkillBody] = Field(min_length=1, max_length=100)
