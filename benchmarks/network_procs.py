"""The network benchmark's processes: each server started on loopback in its own process group, its
output in a log file, its CPU read from ``/proc``, and every one of them stopped at the end.

Each process runs under coreutils ``timeout`` (when there is one), so it dies by itself even if the
benchmark is killed before its cleanup; :meth:`Fleet.close` terminates every group (SIGTERM, then
SIGKILL after a grace period) in the reverse order of their start.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LOOPBACK_ALLOWLIST = '["127.0.0.1","::1","localhost"]'
STOP_GRACE_SECONDS = 10.0


def free_port() -> int:
    """An unused loopback port (released just before the server binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment with the repository importable, no inherited gateway settings, and
    ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("A2A_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


@dataclass
class Server:
    """One started server process: its name, port, process and log."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    profile_path: Path | None = None

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def tail(self, size: int = 3000) -> str:
        """The end of its log."""
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by every process of its group (Linux; 0 elsewhere)."""
        total = 0
        with contextlib.suppress(OSError):
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    # Fields after the parenthesised command name: state ppid pgrp ... utime stime.
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    if int(fields[2]) == self.proc.pid:
                        total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Terminate its whole group, escalating to SIGKILL if it lingers; then reap it."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_GRACE_SECONDS)
        # The group may still hold the server if only its ``timeout`` wrapper exited.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class Fleet:
    """The processes of one run, in a scratch directory; :meth:`close` stops them all."""

    scratch: Path
    lifetime: float
    profile_dir: Path | None = None
    servers: list[Server] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, module_argv: list[str], env: dict[str, str], port: int) -> Server:
        """Start ``python -m <module_argv>`` as ``name`` (under cProfile with a profile directory)."""
        python = [sys.executable]
        profile_path = None
        if self.profile_dir is not None:
            profile_path = self.profile_dir / f"{name}.prof"
            python += ["-m", "cProfile", "-o", str(profile_path)]
        argv = [*python, "-m", *module_argv]
        if shutil.which("timeout"):
            argv = ["timeout", "--kill-after=5", f"{math.ceil(self.lifetime)}", *argv]
        log_path = self.scratch / f"{name}.log"
        log = log_path.open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(name, port, proc, log_path, profile_path)
        self.servers.append(server)
        return server

    def wait_listening(self, server: Server, timeout: float = 60.0) -> None:
        """Until ``server`` accepts connections; fails at once if it exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not server.alive():
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.tail()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, server.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{server.name} did not listen on {HOST}:{server.port} in {timeout:.0f} s")

    def check(self) -> None:
        """Fail if any server has exited."""
        for server in self.servers:
            if not server.alive():
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.tail()}")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each server, and of this process (``bench``)."""
        found = {server.name: server.cpu_seconds() for server in self.servers}
        found["bench"] = time.process_time()
        return found

    def close(self) -> None:
        """Stop every server, the last started first, and close the logs."""
        for server in reversed(self.servers):
            server.stop()
        for log in self._logs:
            log.close()
