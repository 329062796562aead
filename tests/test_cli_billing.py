"""The operator's credit commands: a promotional grant by email or id, and the ledger check."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from a2a_gateway.cli import main
from a2a_gateway.settings import Settings
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.identity_repository import SqlUserRepository


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


async def user_id(data_dir: Path, email: str) -> str:
    engine = db.create_engine(Settings(data_dir=data_dir).resolved_database_url())
    try:
        found = await SqlUserRepository(engine).by_email(email)
        assert found is not None
        return found.id
    finally:
        await engine.dispose()


def test_grant_and_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("A2A_GATEWAY_DATA_DIR", str(tmp_path))
    assert run(["users", "create", "--email", "op@example.com", "--password", "long enough"]) == 0
    assert run(["credits", "grant", "--user", "OP@example.com", "--amount", "300", "--reason", "beta"]) == 0
    assert "granted 300 promotional credits" in capsys.readouterr().out
    me = asyncio.run(user_id(tmp_path, "op@example.com"))
    assert run(["credits", "grant", "--user", me, "--amount", "20", "--reason", "again"]) == 0
    assert "balance 320" in capsys.readouterr().out
    assert run(["ledger", "check"]) == 0
    assert "OK" in capsys.readouterr().out
    assert run(["credits", "grant", "--user", "nobody@example.com", "--amount", "1", "--reason", "x"]) == 1
    assert "no user" in capsys.readouterr().out
    for bad in ("0", "-5", "1.5", "lots"):
        assert run(["credits", "grant", "--user", me, "--amount", bad, "--reason", "x"]) == 2
    assert run(["credits", "grant", "--user", me, "--amount", "1", "--reason", "  "]) == 2
