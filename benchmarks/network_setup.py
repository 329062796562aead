"""The network benchmark's wiring over the servers' own REST APIs, as people and agents would do it.

- :func:`login` registers a user at the gateway (if new) and logs in; :func:`user_key` makes a ``nex_``
  key; :func:`user_id` reads who a token is.
- :func:`register_by_card` registers an agent by its card URL (the exchange, by its operator);
  :func:`price_skill` sets one skill's price in credits; :func:`grant_credits` runs the gateway's
  ``a2a-gateway credits grant`` command on the gateway's database.
- :func:`agent_named` waits for an agent a process registered itself (the engine, by the kit).
- :func:`trading_agent` creates one trading agent through the engine's REST API with its config and a
  fresh sandbox wallet funded with ``starting`` (the engine opens the account at the exchange).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import httpx

from benchmarks.network_procs import REPO_ROOT, base_env

PASSWORD = "benchmark password"
KEY_SCOPES = ["agents:read", "agents:write", "tasks:read", "tasks:write", "keys:read", "keys:write"]


def bearer(credential: str) -> dict[str, str]:
    """The Authorization header of a token or key."""
    return {"Authorization": f"Bearer {credential}"}


def _ok(answer: httpx.Response, what: str, *statuses: int) -> Any:
    if answer.status_code not in (statuses or (200,)):
        raise RuntimeError(f"{what}: HTTP {answer.status_code}: {answer.text[:500]}")
    return answer.json()


async def login(gw: httpx.AsyncClient, email: str) -> str:
    """Register ``email`` (if new) and log in: the access token."""
    await gw.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    answer = await gw.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    token: str = _ok(answer, f"login {email}")["data"]["accessToken"]
    return token


async def user_key(gw: httpx.AsyncClient, token: str, name: str = "bench") -> str:
    """A new ``nex_`` key of the user ``token`` is for."""
    answer = await gw.post(
        "/api/v1/api-keys", json={"name": name, "scopes": KEY_SCOPES}, headers=bearer(token)
    )
    key: str = _ok(answer, "new key", 201)["data"]["key"]
    return key


async def user_id(gw: httpx.AsyncClient, token: str) -> str:
    """The gateway user id of ``token``."""
    found: str = _ok(await gw.get("/api/v1/auth/me", headers=bearer(token)), "me")["data"]["id"]
    return found


async def register_by_card(gw: httpx.AsyncClient, token: str, card_base_url: str) -> str:
    """Register the agent serving its card at ``card_base_url``: its agent id."""
    answer = await gw.post("/api/v1/agents", json={"cardUrl": card_base_url}, headers=bearer(token))
    agent_id: str = _ok(answer, "register by card", 201)["data"]["id"]
    return agent_id


async def price_skill(gw: httpx.AsyncClient, token: str, agent_id: str, skill_id: str, price: int) -> None:
    """Set ``skill_id``'s price (credits per call) on the owner's agent, the other skills unchanged."""
    agent = _ok(await gw.get(f"/api/v1/agents/{agent_id}", headers=bearer(token)), "read agent")["data"]
    skills = [dict(s) for s in agent["skills"]]
    if not any(s["id"] == skill_id for s in skills):
        raise RuntimeError(f"agent {agent_id} has no skill {skill_id}")
    for s in skills:
        if s["id"] == skill_id:
            s["price"] = price
    answer = await gw.patch(f"/api/v1/agents/{agent_id}", json={"skills": skills}, headers=bearer(token))
    _ok(answer, "price skill")


def grant_credits(gateway_env: dict[str, str], email: str, amount: int) -> str:
    """``a2a-gateway credits grant`` on the gateway's database (its data dir in ``gateway_env``)."""
    command = [sys.executable, "-m", "a2a_gateway", "credits", "grant", "--user", email,
               "--amount", str(amount), "--reason", "network benchmark"]  # fmt: skip
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=base_env(**gateway_env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"credits grant failed: {done.stderr or done.stdout}")
    return done.stdout.strip()


async def agent_named(gw: httpx.AsyncClient, token: str, name: str, timeout: float = 30.0) -> str:
    """The id of the caller's agent ``name`` once its process registered it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = await gw.get("/api/v1/agents", headers=bearer(token))
        if answer.status_code == 200:
            found = [a["id"] for a in answer.json()["data"] if a["name"] == name]
            if found:
                return str(found[0])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no agent named {name!r} registered in {timeout:.0f} s")


async def until_ok(client: httpx.AsyncClient, path: str, timeout: float, check: Any = None) -> Any:
    """GET ``path`` until it answers 200 (and ``check(json)`` holds): its JSON."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = await client.get(path)
        except httpx.HTTPError as error:
            last = repr(error)
        else:
            last = f"HTTP {answer.status_code}: {answer.text[:300]}"
            if answer.status_code == 200 and (check is None or check(answer.json())):
                return answer.json()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{path} not ready in {timeout:.0f} s ({last})")


async def trading_agent(
    api: httpx.AsyncClient, token: str, name: str, config: dict[str, Any], starting: float
) -> dict[str, Any]:
    """A trading agent of the owner (``token``) with ``config`` and a new funded sandbox wallet."""
    auth = bearer(token)
    agent: dict[str, Any] = _ok(
        await api.post("/api/v1/agents", json={"name": name}, headers=auth), name, 201
    )
    _ok(await api.put(f"/api/v1/agents/{agent['id']}/config", json=config, headers=auth), "config")
    wallet = _ok(await api.post("/api/v1/wallets", json={"label": "sandbox"}, headers=auth), "wallet", 201)
    body = {"agentId": agent["id"], "walletAddress": wallet["walletAddress"], "startingBalance": starting}
    _ok(await api.post("/api/v1/wallets/assign", json=body, headers=auth), "assign")
    return agent
