"""The one permission model: gateway scopes and the Agent Connect permissions, used by every route."""

from __future__ import annotations

from collections.abc import Iterable

from a2a_gateway.errors import Forbidden, InvalidParams

ALL = "*"
GATEWAY_SCOPES = frozenset(
    {
        "agents:read",
        "agents:write",
        "tasks:read",
        "tasks:write",
        "workflows:read",
        "workflows:write",
        "billing:read",
        "billing:write",
        # Listing keys, and minting or revoking them (user, agent and Agent Connect keys alike).
        "keys:read",
        "keys:write",
    }
)
# Agent Connect (seed 001) permissions, used by the trading agents.
CONNECT_PERMISSIONS = frozenset(
    {"read:market", "read:portfolio", "write:orders", "read:sentiment", "read:social", "write:webhook"}
)
KNOWN = GATEWAY_SCOPES | CONNECT_PERMISSIONS | {ALL}


def validate(scopes: Iterable[str]) -> list[str]:
    """Known scopes, deduplicated in order; InvalidParams names any unknown one."""
    wanted = list(dict.fromkeys(scopes))
    unknown = [s for s in wanted if s not in KNOWN]
    if unknown:
        raise InvalidParams(
            f"Unknown scope(s): {', '.join(sorted(unknown))[:200]}",
            violations=[{"field": "scopes", "description": f"unknown: {', '.join(sorted(unknown))[:200]}"}],
        )
    if not wanted:
        raise InvalidParams(
            "At least one scope is required", violations=[{"field": "scopes", "description": "empty"}]
        )
    return wanted


def covers(granted: frozenset[str], wanted: Iterable[str]) -> bool:
    """Whether ``granted`` holds every scope of ``wanted`` (``*`` is held only by ``*``)."""
    return ALL in granted or all(s in granted for s in wanted)


def require(granted: frozenset[str], needed: str) -> None:
    """Raise Forbidden naming the missing scope."""
    if ALL not in granted and needed not in granted:
        raise Forbidden(f"Missing scope: {needed}", metadata={"requiredScope": needed})
