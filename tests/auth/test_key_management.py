"""Key management needs keys:read / keys:write, never widens scopes, never revokes a wider key;
per-agent keys manage no keys at all."""

from __future__ import annotations

import pytest

from a2a_gateway.auth.models import Principal
from a2a_gateway.auth.service import AuthService
from a2a_gateway.errors import Forbidden, NotFound
from tests.auth.identity_fakes import memory_auth


async def owner_session(auth: AuthService) -> Principal:
    user = await auth.register("owner@example.com", "long enough")
    return Principal(id=user.id, kind="user", scopes=frozenset({"*"}))


async def key_principal(auth: AuthService, issuer: Principal, scopes: list[str]) -> Principal:
    issued = await auth.create_key(issuer, "k", scopes, None)
    return await auth.authenticate_key(issued.plaintext)


async def test_listing_minting_and_revoking_need_the_key_scopes() -> None:
    auth = memory_auth()
    owner = await owner_session(auth)
    reader = await key_principal(auth, owner, ["tasks:read"])
    full = await auth.create_key(owner, "full", ["*"], None)
    with pytest.raises(Forbidden, match="keys:read"):
        await auth.list_keys(reader)
    with pytest.raises(Forbidden, match="keys:write"):
        await auth.create_key(reader, "mine", ["tasks:read"], None)
    with pytest.raises(Forbidden, match="keys:write"):
        await auth.revoke_key(reader, full.record.id)
    assert full.record.id in [k.id for k in await auth.list_keys(owner)]


async def test_a_key_mints_only_scopes_it_holds_and_defaults_to_its_own() -> None:
    auth = memory_auth()
    owner = await owner_session(auth)
    manager = await key_principal(auth, owner, ["keys:write", "tasks:read"])
    with pytest.raises(Forbidden, match="Cannot grant scopes you do not hold"):
        await auth.create_key(manager, "wider", ["tasks:write"], None)
    with pytest.raises(Forbidden):
        await auth.create_key(manager, "all", ["*"], None)
    narrower = await auth.create_key(manager, "narrower", ["tasks:read"], None)
    assert narrower.record.scopes == ["tasks:read"]
    same = await auth.create_key(manager, "default", None, None)
    assert sorted(same.record.scopes) == ["keys:write", "tasks:read"]
    assert (await auth.create_key(owner, "session default", None, None)).record.scopes == ["*"]


async def test_a_key_revokes_only_keys_it_covers() -> None:
    auth = memory_auth()
    owner = await owner_session(auth)
    full = await auth.create_key(owner, "full", ["*"], None)
    wide = await auth.create_key(owner, "wide", ["tasks:read", "tasks:write"], None)
    small = await auth.create_key(owner, "small", ["tasks:read"], None)
    manager = await key_principal(auth, owner, ["keys:write", "tasks:read"])
    for stronger in (full, wide):
        with pytest.raises(Forbidden, match="Cannot revoke"):
            await auth.revoke_key(manager, stronger.record.id)
    await auth.revoke_key(manager, small.record.id)
    still = {k.id: k.revoked_at for k in await auth.list_keys(owner)}
    assert still[full.record.id] is None and still[wide.record.id] is None
    assert still[small.record.id] is not None
    with pytest.raises(NotFound):
        await auth.revoke_key(manager, "no-such-key")


async def test_a_per_agent_key_manages_no_keys() -> None:
    auth = memory_auth()
    owner = await owner_session(auth)
    issued = await auth.create_key(owner, "agent", ["*"], None, kind="agent", agent_id="agent-x")
    agent_key = await auth.authenticate_key(issued.plaintext)
    assert agent_key.agent_id == "agent-x" and agent_key.scopes == frozenset({"*"})
    for attempt in (
        auth.create_key(agent_key, "user", ["tasks:read"], None),
        auth.create_key(agent_key, "sibling", ["tasks:read"], None, kind="agent", agent_id="agent-x"),
        auth.create_key(agent_key, "other", ["tasks:read"], None, kind="agent", agent_id="agent-y"),
        auth.list_keys(agent_key),
        auth.list_keys(agent_key, "agent-x"),
        auth.revoke_key(agent_key, issued.record.id, "agent-x"),
    ):
        with pytest.raises(Forbidden, match="per-agent key"):
            await attempt
