"""The scale-out benchmark's processes: gateways on one PostgreSQL database and one Redis prefix, the
echo agent, a private nginx in front, and the CPU each group of them uses.

:func:`scratch_database` makes a database for the run (migrated with ``a2a-gateway db upgrade``) and a
Redis key prefix, and removes both afterwards. :func:`start_gateway` starts one ``a2a-gateway serve``
with the settings that must match across processes (docs/operations.md, "Running several processes");
:func:`start_nginx` starts nginx, one foreground process, on the deployment example
docs/deploy/nginx.conf with its upstream servers and listen address set for the run. Every process is
started by :class:`benchmarks.network_procs.Fleet`'s rules: its own process group, a ``timeout``
wrapper, stopped at the end. :func:`cpu_by_group` reads user + system CPU from ``/proc``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from benchmarks.network_procs import HOST, LOOPBACK_ALLOWLIST, REPO_ROOT, Fleet, Server, base_env

NGINX_TEMPLATE = REPO_ROOT / "docs" / "deploy" / "nginx.conf"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
# Shared services found by their process name (every process of that name counts).
SERVICE_NAMES = {"postgres": "postgres", "redis": "redis-server"}


@dataclass(frozen=True)
class Backing:
    """The run's database and Redis keyspace, and the secret every process shares."""

    database_url: str  # postgresql+asyncpg://.../<scratch database>
    redis_url: str
    prefix: str
    pepper: str


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def scratch_database(postgres_url: str, redis_url: str, scratch: Path) -> AsyncIterator[Backing]:
    """A new PostgreSQL database next to ``postgres_url``'s, migrated, and a fresh Redis prefix; both
    gone when the block ends (the database's connections are ended first)."""
    name = f"a2a_bench_scale_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_dsn(postgres_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = postgres_url.rsplit("/", 1)[0]
        if "+asyncpg" not in base:
            base = base.replace("postgresql://", "postgresql+asyncpg://", 1)
        backing = Backing(
            f"{base}/{name}", redis_url, f"a2a-bench-{secrets.token_hex(4)}:", secrets.token_hex(16)
        )
        try:
            migrate(backing, scratch)
            yield backing
        finally:
            await _forget_prefix(redis_url, backing.prefix)
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


async def _forget_prefix(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


def gateway_env(backing: Backing, data_dir: Path, public_url: str, **extra: str) -> dict[str, str]:
    """The environment of one gateway process (or of the CLI) on the run's database and Redis."""
    return base_env(
        A2A_GATEWAY_DATA_DIR=str(data_dir),
        A2A_GATEWAY_DATABASE_URL=backing.database_url,
        A2A_GATEWAY_REDIS_URL=backing.redis_url,
        A2A_GATEWAY_REDIS_PREFIX=backing.prefix,
        A2A_GATEWAY_KEY_PEPPER=backing.pepper,
        A2A_GATEWAY_PUBLIC_URL=public_url,
        A2A_GATEWAY_OUTBOUND_ALLOWLIST=LOOPBACK_ALLOWLIST,
        A2A_GATEWAY_LOG_LEVEL="WARNING",
        **extra,
    )


def migrate(backing: Backing, scratch: Path) -> None:
    """``a2a-gateway db upgrade`` on the run's database (PostgreSQL is not migrated at start-up)."""
    env = gateway_env(backing, scratch / "cli", "http://127.0.0.1")
    done = subprocess.run(
        [sys.executable, "-m", "a2a_gateway", "db", "upgrade"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"db upgrade failed: {done.stderr[-2000:] or done.stdout[-2000:]}")


def start_gateway(fleet: Fleet, name: str, port: int, env: dict[str, str]) -> Server:
    """One ``a2a-gateway serve`` on 127.0.0.1:``port``."""
    argv = ["a2a_gateway", "serve", "--host", HOST, "--port", str(port)]
    return fleet.start(name, argv, env, port)


# ---------------------------------------------------------------------------------------- nginx


def nginx_binary() -> str | None:
    """nginx on PATH or in the sbin directories Debian uses (not on every user's PATH)."""
    return shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS]))


def site_from_template(template: str, upstream_ports: Sequence[int], listen_port: int) -> str:
    """The deployment example with one upstream server line per port (the options of its first server
    line kept) and its listen line on 127.0.0.1:``listen_port``."""
    out: list[str] = []
    in_upstream = placed = False
    listens = 0
    for line in template.splitlines():
        stripped = line.strip()
        if stripped.startswith("upstream ") and stripped.endswith("{"):
            in_upstream = True
        elif in_upstream and stripped == "}":
            in_upstream = False
        elif in_upstream and stripped.startswith("server "):
            if not placed:
                indent = line[: len(line) - len(line.lstrip())]
                options = stripped.split(None, 2)[2] if len(stripped.split(None, 2)) > 2 else ";"
                out += [f"{indent}server {HOST}:{port} {options}" for port in upstream_ports]
                placed = True
            continue
        elif re.match(r"listen\s", stripped):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}listen {HOST}:{listen_port};")
            listens += 1
            continue
        out.append(line)
    if not placed or listens != 1:
        raise ValueError(f"{NGINX_TEMPLATE} needs an upstream with server lines and one listen line")
    return "\n".join(out) + "\n"


def _temp_paths(binary: str, prefix: Path) -> str:
    """A temp path directive under ``prefix`` for each temp path this nginx was built with."""
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10, check=False).stderr
    kinds = re.findall(r"--http-([a-z-]+)-temp-path=", built)
    return "".join(f"    {kind.replace('-', '_')}_temp_path {prefix / ('tmp-' + kind)};\n" for kind in kinds)


def start_nginx(fleet: Fleet, name: str, binary: str, port: int, upstream_ports: Sequence[int]) -> Server:
    """nginx in the foreground, one process, its files under the fleet's scratch, proxying
    127.0.0.1:``port`` to the gateways on ``upstream_ports`` as docs/deploy/nginx.conf does."""
    prefix = fleet.scratch / name
    prefix.mkdir(parents=True, exist_ok=True)
    site = site_from_template(NGINX_TEMPLATE.read_text(), upstream_ports, port)
    conf = prefix / "nginx.conf"
    conf.write_text(
        "daemon off;\nmaster_process off;\n"
        f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        f"http {{\n    access_log {prefix / 'access.log'};\n{_temp_paths(binary, prefix)}{site}}}\n"
    )
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    return start_command(fleet, name, argv, base_env(), port)


def start_command(fleet: Fleet, name: str, argv: list[str], env: dict[str, str], port: int) -> Server:
    """Any program, started as :meth:`Fleet.start` starts Python modules (own group, ``timeout``)."""
    if shutil.which("timeout"):
        argv = ["timeout", "--kill-after=5", f"{math.ceil(fleet.lifetime)}", *argv]
    log_path = fleet.scratch / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, port, proc, log_path)
    fleet.servers.append(server)
    return server


# ---------------------------------------------------------------------------------------- CPU


def cpu_by_group(groups: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """CPU seconds (user + system, with the reaped children's) so far of each group: ``groups`` maps a
    name to process group ids; the shared services (:data:`SERVICE_NAMES`) are found by process name;
    ``bench`` is this process, ``machine`` the whole machine (every process, other tenants' too)."""
    ticks: dict[str, int] = dict.fromkeys([*groups, *SERVICE_NAMES], 0)
    owner = {pgrp: name for name, pgrps in groups.items() for pgrp in pgrps}
    by_comm = {comm: name for name, comm in SERVICE_NAMES.items()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            comm = text[text.index("(") + 1 : text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            name = owner.get(int(fields[2])) or by_comm.get(comm)
            if name is not None:
                # utime stime, and cutime cstime: the CPU of children it has reaped (PostgreSQL's
                # postmaster reaps the backends of closed connections; their own entries are gone).
                ticks[name] += sum(int(value) for value in fields[11:15])
    found = {name: count / os.sysconf("SC_CLK_TCK") for name, count in ticks.items()}
    found["bench"] = _own_cpu()
    found["machine"] = machine_busy_seconds()
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy, all cores (``/proc/stat``: all but idle and iowait)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    return math.nan


def _own_cpu() -> float:
    usage = os.times()
    return usage.user + usage.system
