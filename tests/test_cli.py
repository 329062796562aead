"""The command line: users create, db upgrade, and the demo with its example network."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


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


def test_demo_runs_the_gateway_with_a_self_registered_echo_agent(tmp_path: Path) -> None:
    with socket.socket() as s:  # the demo's echo agent takes the next port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"A2A_GATEWAY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "A2A_GATEWAY_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "a2a_gateway", "demo", "--host", "127.0.0.1", "--port", str(port)]
    demo = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, agents = time.monotonic() + 30, []
        while time.monotonic() < deadline and not agents:
            time.sleep(0.2)
            try:
                agents = httpx.get(f"{base}/api/v1/discover", params={"status": "online"}).json()["data"]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        assert [a["name"] for a in agents] == ["Echo Agent"]
        assert agents[0]["endpoint"] == f"http://127.0.0.1:{port + 1}/a2a"
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]},
                           "metadata": {"skillTags": "test"}}}  # fmt: skip
        task = httpx.post(f"{base}/a2a", json=body, headers={"A2A-Version": "1.0"}).json()["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED" and task["metadata"] == {
            "agentId": agents[0]["id"]
        }
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        output = demo.communicate(timeout=30)[0].decode()
    assert "The example network" in output
    # The echo agent stopped with the demo.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port + 1)) != 0
