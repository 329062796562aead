"""The command line: users create, db upgrade."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"A2A_GATEWAY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "a2a_gateway", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_users_create_then_duplicate_is_a_clear_error(tmp_path: Path) -> None:
    created = run(tmp_path, "users", "create", "--email", "Op@Example.com", "--password", "operator-pass")
    assert created.returncode == 0, created.stderr
    assert "created user" in created.stdout and "op@example.com" in created.stdout
    again = run(tmp_path, "users", "create", "--email", "op@example.com", "--password", "operator-pass")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "operator-pass" not in again.stderr + again.stdout


def test_db_upgrade_reports_the_revision(tmp_path: Path) -> None:
    result = run(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "revision 0004" in result.stdout
