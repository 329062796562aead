"""An app whose start fails half-way still closes what it opened (database connections above all)."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_agent_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings, sqlite_workers


async def test_a_failed_start_closes_the_database(tmp_path: Path) -> None:
    app = create_agent_app(ECHO_AGENT, make_settings(tmp_path))
    service = app.state.service
    real_recover = service.recover

    async def recover_then_fail(*args: object, **kwargs: object) -> int:
        await real_recover()  # the database is open and has been used
        raise RuntimeError("recovery failed")

    service.recover = recover_then_fail
    before = sqlite_workers()
    with pytest.raises(RuntimeError, match="recovery failed"):
        async with LifespanManager(app):
            pass
    left = sqlite_workers() - before
    for thread in left:
        thread.join(timeout=2)
    assert not [t for t in left if t.is_alive()]
