"""A real nginx in front of gateway processes, for tests: ``async with running_nginx(tmp_path, ports)``.

The proxy's configuration is the deployment example, docs/deploy/nginx.conf, with its upstream servers
and its listen address replaced, so the test proxies exactly as the documented one does. nginx runs in
the foreground as one process (``daemon off``, ``master_process off``), with its pid file, logs and
temporary directories under a private prefix, and listens on a free 127.0.0.1 port. Without nginx the
test is skipped with the reason (``.ci/run`` installs Debian's package).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "nginx.conf"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_UPSTREAM = re.compile(r"(upstream\s+\w+\s*\{)(.*?)(\n\})", re.DOTALL)
_SERVER_LINE = re.compile(r"^(\s*)server\s+\S+(.*;)[^\n]*$", re.MULTILINE)
_LISTEN_LINE = re.compile(r"^(\s*)listen\s+[^;]+;", re.MULTILINE)


def nginx_binary() -> str | None:
    """The nginx executable: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    return shutil.which("nginx", path=search)


def site_config(upstream_ports: Sequence[int], listen_port: int, template: str | None = None) -> str:
    """docs/deploy/nginx.conf with one upstream server per port (its first server line as the pattern)
    and a listen on 127.0.0.1:``listen_port``; ValueError when the file no longer has those lines."""
    text = TEMPLATE.read_text() if template is None else template
    upstream = _UPSTREAM.search(text)
    if upstream is None or not upstream_ports:
        raise ValueError("the nginx template has no upstream block (or no port was given)")
    first = _SERVER_LINE.search(upstream.group(2))
    if first is None:
        raise ValueError("the nginx template's upstream has no server line")
    indent, options = first.group(1), first.group(2)
    servers = "".join(f"{indent}server 127.0.0.1:{port}{options}" for port in upstream_ports)
    body = upstream.group(2)
    body = body[: first.start()] + servers + _SERVER_LINE.sub("", body[first.end() :])
    text = text[: upstream.start(2)] + body + text[upstream.end(2) :]
    text, listens = _LISTEN_LINE.subn(lambda m: f"{m.group(1)}listen 127.0.0.1:{listen_port};", text)
    if listens != 1:
        raise ValueError(f"the nginx template should have one listen line, not {listens}")
    return text


def main_config(site: str, prefix: Path, binary: str) -> str:
    """A whole nginx.conf around ``site``: foreground, one process, everything under ``prefix``."""
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10, check=False).stderr
    temps = "".join(
        f"    {kind.replace('-', '_')}_temp_path {prefix / ('temp-' + kind)};\n"
        for kind in re.findall(r"--http-([a-z-]+)-temp-path=", built)
    )
    return (
        "daemon off;\n"
        "master_process off;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {prefix / 'access.log'};\n"
        f"{temps}"
        f"{site}\n"
        "}\n"
    )


@dataclass
class Nginx:
    """A running nginx: its address, and its files for a failing test's message."""

    url: str
    port: int
    prefix: Path
    process: asyncio.subprocess.Process

    @property
    def error_log(self) -> Path:
        """nginx's error log (upstream failures are reported here)."""
        return self.prefix / "error.log"

    def log_text(self) -> str:
        """The error log so far ("" when there is none yet)."""
        with contextlib.suppress(FileNotFoundError):
            return self.error_log.read_text(errors="replace")
        return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def running_nginx(tmp_path: Path, upstream_ports: Sequence[int]) -> AsyncIterator[Nginx]:
    """nginx proxying 127.0.0.1:<its port> to the 127.0.0.1 ``upstream_ports``, as docs/deploy/nginx.conf
    does; started when the block begins (once it accepts connections), stopped when it ends. Skips the
    test when nginx is not installed."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (not on PATH nor in /usr/sbin); .ci/run installs nginx-light")
    prefix = tmp_path / f"nginx-{os.getpid()}-{time.monotonic_ns()}"
    prefix.mkdir(parents=True)
    port = _free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(site_config(upstream_ports, port), prefix, binary))
    with (prefix / "stderr.log").open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            binary,
            "-p",
            str(prefix),
            "-c",
            str(conf),
            "-e",
            str(prefix / "error.log"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    proxy = Nginx(f"http://127.0.0.1:{port}", port, prefix, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not await _accepts(port):
            if process.returncode is not None or time.monotonic() > deadline:
                output = (prefix / "stderr.log").read_text(errors="replace")
                raise RuntimeError(f"nginx did not start: {output}{proxy.log_text()}")
            await asyncio.sleep(0.02)
        yield proxy
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown: open streams are cut
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
