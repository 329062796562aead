"""The one rule of what a caller may do: scopes for sessions and user keys, confinement for per-agent keys."""

from __future__ import annotations

import pytest

from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import Forbidden, NotFound

USER_KEY = Principal(id="u1", kind="user", scopes=frozenset({"agents:read", "tasks:read"}), key_id="k1")
AGENT_KEY = Principal(
    id="u1", kind="user", scopes=frozenset({"*"}), key_id="k2", key_kind="agent", agent_id="agent-x"
)


def test_user_keys_need_the_scope() -> None:
    USER_KEY.require("tasks:read")
    USER_KEY.require("agents:read", agent="any-agent")  # reading another's agent is a scope question only
    USER_KEY.require()
    with pytest.raises(Forbidden, match="Missing scope: tasks:write"):
        USER_KEY.require("tasks:write")


def test_an_agent_key_acts_on_its_own_agent_only() -> None:
    AGENT_KEY.require("agents:write", agent="agent-x")
    AGENT_KEY.require("tasks:read", routed_tasks=True)
    assert AGENT_KEY.speaks_for("agent-x") and not AGENT_KEY.speaks_for("agent-y")
    assert AGENT_KEY.may_address("agent-x") and not AGENT_KEY.may_address("agent-y")
    with pytest.raises(NotFound):
        AGENT_KEY.require("agents:read", agent="agent-y")


@pytest.mark.parametrize(
    "scope", ["tasks:write", "tasks:read", "agents:write", "keys:write", "keys:read", ""]
)
def test_an_agent_key_is_refused_everything_else_whatever_its_scopes(scope: str) -> None:
    # "*" would allow all of these to a user key; a route that does not open itself to agent keys is closed.
    with pytest.raises(Forbidden) as refused:
        AGENT_KEY.require(scope)
    assert "per-agent key" in refused.value.message


def test_an_agent_key_still_needs_its_scopes_where_it_is_allowed() -> None:
    narrow = Principal(id="u1", kind="user", scopes=frozenset({"tasks:read"}), agent_id="agent-x")
    with pytest.raises(Forbidden, match="agents:write"):
        narrow.require("agents:write", agent="agent-x")
