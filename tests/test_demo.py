"""The example network's processes: the demo (the gateway and the whole trading network) and the echo
agent's entry point.

Every process here runs on loopback and is bounded in time; the demo tests are marked slow.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
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


def free_ports(count: int = 5) -> int:
    """A loopback port whose next ``count - 1`` ports are free too (the demo's agents take them)."""
    for _ in range(100):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
        if port + count > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for offset in range(count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return port
    raise RuntimeError("no free run of loopback ports")


AGENT_DIRS = ("echo-agent", "exchange", "engine", "signals")
AGENT_NAMES = {"Echo Agent", "Paper Exchange", "Trading Engine", "Signal Agent"}


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


def agent_pids(data_dir: Path) -> dict[str, int]:
    """The pid holding each agent's data directory lock."""
    return {name: lock_holder(data_dir / name) for name in AGENT_DIRS}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_demo_runs_the_network_trades_through_the_gateway_and_its_agents_die_with_it(tmp_path: Path) -> None:
    port = free_ports()
    base = f"http://127.0.0.1:{port}"
    with subreaper():
        demo = subprocess.Popen(
            demo_command(port, "--duration", "300"),
            env=env_for(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output = Lines(demo)
        pids: dict[str, int] = {}
        try:
            assert output.wait_for(BANNER, timeout=90).strip() == f"{BANNER} {base}"
            # Once the banner is out, every agent is registered by its own owner and online: no retrying.
            agents = httpx.get(f"{base}/api/v1/discover", params={"status": "online"}).json()["data"]
            assert {a["name"] for a in agents} == AGENT_NAMES
            owners = {a["name"]: a["ownerId"] for a in agents}
            assert len({owners["Paper Exchange"], owners["Trading Engine"], owners["Signal Agent"]}) == 3
            described = json.loads((tmp_path / "demo.json").read_text())
            assert described["gateway"] == base
            assert {n: d["agentId"] for n, d in described["agents"].items()} == {
                "echo": next(a["id"] for a in agents if a["name"] == "Echo Agent"),
                "exchange": next(a["id"] for a in agents if a["name"] == "Paper Exchange"),
                "engine": next(a["id"] for a in agents if a["name"] == "Trading Engine"),
                "signals": next(a["id"] for a in agents if a["name"] == "Signal Agent"),
            }
            assert described["engineWebSocket"] == f"ws://127.0.0.1:{port + 3}/ws"
            assert described["demoUser"]["email"] == "demo@example.com"
            password = Path(described["demoUser"]["passwordFile"]).read_text().strip()
            login = httpx.post(
                f"{base}/api/v1/auth/login", json={"email": "demo@example.com", "password": password}
            )
            assert login.status_code == 200
            # Priced skills, as the banner says.
            exchange = next(a for a in agents if a["name"] == "Paper Exchange")
            prices = {s["id"]: s["price"] for s in exchange["skills"]}
            assert prices["place-order"] == 2 and prices["market-data"] == 0

            # Not a terminal: one line per event. A signal becomes an order within the first seconds.
            assert "bought" in output.wait_for(" bought ", timeout=60)
            token = login.json()["data"]["accessToken"]
            auth = {"Authorization": f"Bearer {token}"}
            swaps = httpx.get(f"http://127.0.0.1:{port + 3}/api/v1/agent-transactions", headers=auth).json()
            assert any(t["side"] == "buy" for t in swaps)
            tasks = httpx.get(f"{base}/api/v1/tasks", params={"limit": 100}, headers=auth).json()["data"]
            assert any(t["status"] == "completed" for t in tasks)
            balance = httpx.get(f"{base}/api/v1/billing/balance", headers=auth).json()["data"]
            assert balance["total_spent"] >= 2  # the order was paid for, in credits

            # A second demo on the same data directory stops at once with one line, and harms nothing.
            second = subprocess.run(
                demo_command(free_ports()),
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

            pids = agent_pids(tmp_path)
            assert demo.pid not in pids.values() and len(set(pids.values())) == len(AGENT_DIRS)
            os.kill(demo.pid, signal.SIGKILL)
            assert demo.wait(timeout=10) == -signal.SIGKILL
            for pid in pids.values():
                wait_gone(pid, timeout=20)
                assert not alive(pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
            for pid in pids.values():
                wait_gone(pid, timeout=5)
            output.close()
    for offset in range(1, 5):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port + offset)) != 0


@pytest.mark.slow
def test_demo_stops_cleanly_after_its_duration_and_leaves_no_process(tmp_path: Path) -> None:
    port = free_ports()
    demo = subprocess.Popen(
        demo_command(port, "--duration", "0.5"),
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out = demo.communicate(timeout=120)[0].decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=10)
    assert demo.returncode == 0, out
    assert BANNER in out and "Stops after 0.5 s." in out
    for pid in agent_pids(tmp_path).values():  # each agent was stopped and waited for
        assert not alive(pid)
    assert (tmp_path / "gateway.db").exists()  # left for inspection
    assert (tmp_path / "logs" / "gateway.log").exists()


@pytest.mark.parametrize("taken", range(5), ids=["gateway", "echo", "exchange", "engine", "signals"])
def test_demo_on_a_taken_port_is_one_line_and_starts_nothing(tmp_path: Path, taken: int) -> None:
    port = free_ports()
    with socket.create_server(("127.0.0.1", port + taken)):
        result = subprocess.run(
            demo_command(port), env=env_for(tmp_path), check=False, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr == f"demo: error: cannot listen on 127.0.0.1:{port + taken}: Address already in use\n"
    )
    assert not any((tmp_path / name).exists() for name in AGENT_DIRS)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--agents-only"], "--agents-only and --gateway-url go together"),
        (["--gateway-url", "http://127.0.0.1:1"], "--agents-only and --gateway-url go together"),
        (["--duration", "0"], "--duration must be positive"),
    ],
)
def test_demo_flags_that_do_not_go_together_are_usage_errors(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    result = subprocess.run(
        demo_command(free_ports(), *extra),
        env=env_for(tmp_path),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and message in result.stderr


def test_demo_against_a_gateway_that_does_not_answer_says_so_and_starts_no_agent(tmp_path: Path) -> None:
    port = free_ports()
    result = subprocess.run(
        demo_command(port, "--agents-only", "--gateway-url", f"http://127.0.0.1:{port}"),
        env=env_for(tmp_path),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"demo: error: the gateway at http://127.0.0.1:{port} cannot be reached (ConnectError)\n"
    )
    assert not any((tmp_path / name).exists() for name in AGENT_DIRS)


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


@pytest.mark.slow
def test_agents_only_registers_the_network_at_a_gateway_started_elsewhere(tmp_path: Path) -> None:
    port = free_ports()
    base = f"http://127.0.0.1:{port}"
    gateway_env = env_for(tmp_path / "gateway") | {
        "A2A_GATEWAY_OUTBOUND_ALLOWLIST": '["127.0.0.1"]',
        "A2A_GATEWAY_PUBLIC_URL": base,
    }
    serve = [sys.executable, "-m", "a2a_gateway", "serve", "--host", "127.0.0.1", "--port", str(port)]
    gateway = subprocess.Popen(serve, env=gateway_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health/ready").status_code == 200:
                    break
            time.sleep(0.1)
        agents_dir = tmp_path / "agents"
        result = subprocess.run(
            demo_command(port, "--agents-only", "--gateway-url", base, "--duration", "1"),
            env=env_for(agents_dir),
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{BANNER} {base}" in result.stdout
        assert "This gateway is not the demo's: give the users credits" in result.stdout
        agents = httpx.get(f"{base}/api/v1/discover").json()["data"]
        assert {a["name"] for a in agents} == AGENT_NAMES
        assert len({a["ownerId"] for a in agents}) == 3
        assert not (agents_dir / "gateway.db").exists()  # the gateway's database is elsewhere
        assert (tmp_path / "gateway" / "gateway.db").exists()
        for pid in agent_pids(agents_dir).values():
            assert not alive(pid)
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
