"""The demo's agent processes: started through the wrapper that ties each to the demo, stopped together.

Each agent gets only its own settings (none of the gateway's, its database above all), writes its output
to ``logs/<name>.log`` under the demo's data directory (so it does not break the live view), and locks its
own data directory, as every agent process does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from a2a_gateway.server import lock_data_dir

STOP_SECONDS: Final = 10.0
LOG_TAIL_LINES: Final = 12
LOOPBACK_ALLOWLIST: Final = '["127.0.0.1", "::1", "localhost"]'


class AgentStopped(Exception):
    """An agent process ended while the demo ran; the message is :meth:`Child.failure`."""


@dataclass
class Child:
    """One agent process: its name, base URL, data directory, log file and exit watcher."""

    name: str
    url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    exited: asyncio.Task[int]

    def failure(self) -> str:
        """One paragraph saying that the agent stopped, with the end of its log."""
        code = self.exited.result() if self.exited.done() else None
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            lines = []
        tail = "".join(f"\n  | {line}" for line in lines)
        return (
            f"the {self.name} stopped (exit code {code}); its log {self.log_path} ends:{tail or ' (empty)'}"
        )


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the gateway's settings, plus the agent's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("A2A_GATEWAY_", "A2A_ENGINE_"))}
    env |= {"A2A_GATEWAY_OUTBOUND_ALLOWLIST": LOOPBACK_ALLOWLIST, "A2A_GATEWAY_HEARTBEAT_SECONDS": "20"}
    return env | dict(extra)


async def spawn(
    name: str,
    module: str,
    args: Iterable[str],
    *,
    url: str,
    data_dir: Path,
    logs: Path,
    env: Mapping[str, str],
) -> Child:
    """Start ``module`` with ``args`` as a child that dies with this process (agents_examples.demo.child)."""
    argv = [sys.executable, "-m", "agents_examples.demo.child", str(os.getpid()), module, *args]
    log_path = logs / f"{data_dir.name}.log"
    process = await asyncio.to_thread(_start, argv, child_env(env), data_dir, log_path)
    exited = asyncio.create_task(asyncio.to_thread(process.wait), name=f"{name} exit")
    return Child(name, url, data_dir, log_path, process, exited)


def _start(argv: list[str], env: dict[str, str], data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    # A previous agent that is still shutting down (its demo was killed) lets go of its data shortly.
    lock_data_dir(data_dir, wait_seconds=STOP_SECONDS).release()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        # Our own interpreter and modules, no shell.
        return subprocess.Popen(  # noqa: S603
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )


async def stop_all(children: Iterable[Child]) -> None:
    """SIGTERM every child, wait a grace period for each, then SIGKILL those still running."""
    running = list(children)
    for child in reversed(running):
        if child.process.poll() is None:
            child.process.terminate()
    for child in running:
        try:
            await asyncio.wait_for(asyncio.shield(child.exited), STOP_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.exited
