"""The metadata keys a caller uses to steer routing, and the key that tells which agent served a task."""

from __future__ import annotations

from typing import Any, Final

from a2a_gateway.agent.definition import SKILL_KEY as KIT_SKILL_KEY

AGENT_KEY: Final = "agentId"  # the agent to call (request or message metadata); set on every routed task
SKILL_KEY: Final = KIT_SKILL_KEY  # a skill by id: routed when no local skill has that id
TAGS_KEY: Final = "skillTags"  # skill tags, a list or "a,b": the best online agent offering all of them


def merged(
    message_metadata: dict[str, Any] | None, request_metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """Request metadata over message metadata, as routing reads them."""
    return {**(message_metadata or {}), **(request_metadata or {})}


def tag_list(raw: object) -> list[str]:
    """Skill tags from a list or a comma-separated string; anything else is no tags."""
    values = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return [t.strip() for t in values if isinstance(t, str) and t.strip()]


def pinned(metadata: object, agent_id: str) -> dict[str, Any]:
    """Request metadata that routes the message to ``agent_id``, whatever else it says."""
    return {**(metadata if isinstance(metadata, dict) else {}), AGENT_KEY: agent_id}
