"""The example network's processes: the demo (gateway plus echo agent) and the echo agent's entry point.

Every process here runs on loopback and is bounded in time; the demo tests are marked slow.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from a2a_gateway.server import lock_data_dir

PR_SET_CHILD_SUBREAPER = 36
BANNER = "A2A gateway is running at"


def free_port_pair() -> int:
    """A loopback port whose next port is free too (the demo's echo agent takes it)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            with socket.socket() as second:
                if second.connect_ex(("127.0.0.1", port + 1)) != 0 and port < 65535:
                    try:
                        second.bind(("127.0.0.1", port + 1))
                    except OSError:
                        continue
                    return port
    raise RuntimeError("no free pair of loopback ports")


def env_for(data_dir: Path) -> dict[str, str]:
    return {
        "A2A_GATEWAY_DATA_DIR": str(data_dir),
        "PATH": "/usr/bin:/bin",
        "A2A_GATEWAY_LOG_LEVEL": "WARNING",
    }


def demo_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "agents_examples.demo", "--host", "127.0.0.1", "--port", str(port), *extra]


class Lines:
    """A process's output, read line by line on a thread so the test can wait for one with a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for raw in self._stdout:
            self._queue.put(raw.decode(errors="replace"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line containing ``text``; fails when the output ends or the time is up first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed; output so far:\n{''.join(self.seen)}")

    def close(self) -> None:
        """Wait for the end of the output (every writer gone), then close the pipe."""
        self._thread.join(timeout=30)
        self._stdout.close()


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Orphans of our children become our children, so the test can wait for them by pid."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0)


def wait_gone(pid: int, timeout: float) -> None:
    """Until process ``pid`` has exited (reaped by us if it became our child, else by its new parent)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not (or no longer) our child
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)


def lock_holder(data_dir: Path) -> int:
    return int((data_dir / ".lock").read_text().strip())


@pytest.mark.slow
def test_demo_is_ready_when_it_says_so_refuses_a_second_demo_and_its_agent_dies_with_it(
    tmp_path: Path,
) -> None:
    port = free_port_pair()
    base = f"http://127.0.0.1:{port}"
    with subreaper():
        demo = subprocess.Popen(
            demo_command(port, "--duration", "120"),
            env=env_for(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output = Lines(demo)
        agent_pid = 0
        try:
            assert output.wait_for(BANNER, timeout=60).strip() == f"{BANNER} {base}"
            # Once the banner is out, the gateway answers and the echo agent is registered: no retrying.
            agents = httpx.get(f"{base}/api/v1/discover", params={"status": "online"}).json()["data"]
            assert [a["name"] for a in agents] == ["Echo Agent"]
            assert agents[0]["endpoint"] == f"http://127.0.0.1:{port + 1}/a2a"
            agent_id = re.search(r"as agent ([0-9a-f-]{36})\.", output.wait_for("as agent", timeout=5))
            assert agent_id is not None and agent_id[1] == agents[0]["id"]
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                    "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]},
                               "metadata": {"skillId": "echo"}}}  # fmt: skip
            reply = httpx.post(f"{base}/a2a", json=body, headers={"A2A-Version": "1.0"}).json()
            task = reply["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED"
            assert task["metadata"] == {"agentId": agents[0]["id"]}
            assert task["artifacts"][0]["parts"] == [{"text": "hi"}]

            # A second demo on the same data directory stops at once with one line, and harms nothing.
            second = subprocess.run(
                demo_command(free_port_pair()),
                env=env_for(tmp_path),
                check=False,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 1 and second.stdout == ""
            assert second.stderr == (
                f"demo: error: data directory {tmp_path} is in use by another process (pid {demo.pid}); "
                "stop it or choose another data directory\n"
            )

            agent_pid = lock_holder(tmp_path / "echo-agent")
            assert agent_pid != demo.pid
            os.kill(demo.pid, signal.SIGKILL)
            assert demo.wait(timeout=10) == -signal.SIGKILL
            wait_gone(agent_pid, timeout=20)
            with pytest.raises(ProcessLookupError):
                os.kill(agent_pid, 0)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
            if agent_pid:
                wait_gone(agent_pid, timeout=5)
            output.close()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port + 1)) != 0


@pytest.mark.slow
def test_demo_stops_cleanly_after_its_duration(tmp_path: Path) -> None:
    port = free_port_pair()
    demo = subprocess.Popen(
        demo_command(port, "--duration", "0.5"),
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out = demo.communicate(timeout=90)[0].decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=10)
    assert demo.returncode == 0, out
    assert BANNER in out and "Stops after 0.5 s." in out
    with pytest.raises(ProcessLookupError):  # the agent was stopped and waited for
        os.kill(lock_holder(tmp_path / "echo-agent"), 0)


@pytest.mark.parametrize("taken", [0, 1], ids=["gateway port", "echo agent port"])
def test_demo_on_a_taken_port_is_one_line_and_starts_nothing(tmp_path: Path, taken: int) -> None:
    port = free_port_pair()
    with socket.create_server(("127.0.0.1", port + taken)):
        result = subprocess.run(
            demo_command(port), env=env_for(tmp_path), check=False, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr == f"demo: error: cannot listen on 127.0.0.1:{port + taken}: Address already in use\n"
    )
    assert not (tmp_path / "echo-agent").exists()


def test_echo_agent_refuses_a_data_directory_in_use(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "agents_examples.echo", "--data-dir", str(tmp_path), "--port", "1"]
    with lock_data_dir(tmp_path):
        result = subprocess.run(
            command, env=env_for(tmp_path), check=False, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"echo agent: error: data directory {tmp_path} is in use by another process (pid {os.getpid()}); "
        "stop it or choose another data directory\n"
    )
