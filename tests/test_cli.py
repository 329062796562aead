"""The command line: users create, db upgrade, serve (its start-up errors), help and version."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from a2a_gateway.cli import build_parser
from a2a_gateway.server import lock_data_dir
from a2a_gateway.settings import Settings


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
    versions = Path(__file__).parents[1] / "a2a_gateway" / "storage" / "migrations" / "versions"
    newest = max(p.name[:4] for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert result.stdout == f"database is at revision {newest}\n"


def test_serve_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"a2a-gateway: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_serve_refuses_a_data_directory_in_use(tmp_path: Path) -> None:
    with lock_data_dir(tmp_path):
        result = run(tmp_path, "serve", "--port", "1")
    assert result.returncode == 1
    assert result.stderr == (
        f"a2a-gateway: error: data directory {tmp_path} is in use by another process (pid {os.getpid()}); "
        "stop it or choose another data directory\n"
    )


def test_version(tmp_path: Path) -> None:
    result = run(tmp_path, "--version")
    assert result.returncode == 0 and result.stdout == f"a2a-gateway {metadata.version('a2a-gateway')}\n"


def test_every_option_has_help_and_shows_its_default(tmp_path: Path) -> None:
    parser = build_parser(Settings(data_dir=tmp_path))
    parsers = [parser]
    while parsers:
        current = parsers.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):  # its choices are checked one by one
                parsers.extend(action.choices.values())
                continue
            assert action.help, f"{current.prog}: {action.dest} has no help"
    serve_help = run(tmp_path, "serve", "--help").stdout
    assert "(default: 127.0.0.1)" in serve_help and "(default: 8000)" in serve_help


def test_a_bad_setting_is_named_without_its_value(tmp_path: Path) -> None:
    env = {"A2A_GATEWAY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "A2A_GATEWAY_PORT": "s3cret"}
    command = [sys.executable, "-m", "a2a_gateway", "--version"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "A2A_GATEWAY_PORT" in result.stderr and "s3cret" not in result.stderr


def test_the_gateway_imports_nothing_from_the_examples(tmp_path: Path) -> None:
    code = "import sys, a2a_gateway.cli, a2a_gateway.app; print([m for m in sys.modules if 'examples' in m])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "[]\n"
    assert run(tmp_path, "demo").returncode == 2  # the demo is python -m agents_examples.demo now
