"""The demo's users at the gateway, made over its REST API (so the same code serves a remote gateway).

Each role (the trader, who is the demo user, the exchange's operator and the analyst running the signal
agent) is a gateway user with a password kept under ``secrets/`` in the demo's data directory (the file
holds the password itself). A user is logged in first and registered only when the login fails, so
repeated demos do not spend the gateway's registration budget. Each user has two ``nex_`` keys, kept
(mode 0600) beside the password and reused while the gateway still takes them: the key its agent
process runs with, scoped to what that agent does, and a read-only key for the live view.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from a2a_gateway.storage.secrets import load_or_create

VIEW_SCOPES: Final = ["agents:read", "tasks:read", "billing:read"]


class SetupFailed(Exception):
    """A step of the demo's set-up was refused; the message says which and why (never a secret)."""


@dataclass(frozen=True)
class Role:
    """Who a demo user is and what its agent's key may do."""

    name: str
    email: str
    agent_scopes: tuple[str, ...]


@dataclass(frozen=True)
class Account:
    """A demo user as the launcher holds it."""

    role: Role
    user_id: str
    token: str
    agent_key: str
    view_key: str
    password_file: Path

    @property
    def auth(self) -> dict[str, str]:
        """Headers of the user's login session (set-up only: the token expires)."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def view(self) -> dict[str, str]:
        """Headers of the user's read-only key."""
        return {"X-API-Key": self.view_key}


def answer(response: httpx.Response, what: str, *ok: int) -> Any:
    """The ``data`` of a gateway answer (or the body of an agent's); SetupFailed naming ``what`` else."""
    if response.status_code not in (ok or (200,)):
        try:
            error = response.json().get("error")
        except ValueError:
            error = None
        if isinstance(error, dict):
            reason = f"{error.get('code')}: {error.get('message')}"
        else:
            reason = str(error or response.reason_phrase)
        raise SetupFailed(f"{what} was refused ({response.status_code} {reason[:300]})")
    body = response.json()
    return body.get("data", body) if isinstance(body, dict) else body


class Accounts:
    """Makes (or finds) the demo's users and their keys at the gateway ``client`` is bound to."""

    def __init__(self, client: httpx.AsyncClient, data_dir: Path) -> None:
        self._client = client
        self._data_dir = data_dir
        self._gateway = str(client.base_url).rstrip("/")

    async def ensure(self, role: Role) -> Account:
        """The role's user, logged in, with its two keys."""
        secret_name = f"demo-{role.name}-password"
        password = load_or_create(self._data_dir, secret_name).hex()
        token = await self._login(role.email, password)
        if token is None:
            registered = await self._client.post(
                "/api/v1/auth/register", json={"email": role.email, "password": password}
            )
            if registered.status_code == 409:
                raise SetupFailed(
                    f"the gateway already has a user {role.email} whose password is not the one in "
                    f"{self._data_dir / 'secrets' / secret_name}; use the data directory that created "
                    "it or another gateway"
                )
            answer(registered, f"registering {role.email}", 201)
            token = await self._login(role.email, password)
            if token is None:
                raise SetupFailed(f"logging in as {role.email} was refused after registering")
        me = answer(
            await self._client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}),
            f"reading {role.email}",
        )
        keys = await self._keys(role, token)
        return Account(
            role, str(me["id"]), token, keys["agent"], keys["view"], self._data_dir / "secrets" / secret_name
        )

    async def _login(self, email: str, password: str) -> str | None:
        response = await self._client.post("/api/v1/auth/login", json={"email": email, "password": password})
        if response.status_code == 401:
            return None
        token: str = answer(response, f"logging in as {email}")["accessToken"]
        return token

    async def _keys(self, role: Role, token: str) -> dict[str, str]:
        path = self._data_dir / "secrets" / f"demo-{role.name}-keys.json"
        with contextlib.suppress(OSError, ValueError):
            stored = json.loads(path.read_text())
            if stored.get("gateway") == self._gateway and await self._valid(
                stored.get("agent"), stored.get("view")
            ):
                return {"agent": stored["agent"], "view": stored["view"]}
        keys = {
            "agent": await self._mint(token, f"demo {role.name} agent", list(role.agent_scopes)),
            "view": await self._mint(token, f"demo {role.name} view", VIEW_SCOPES),
        }
        _write_private(path, json.dumps({"gateway": self._gateway, **keys}))
        return keys

    async def _valid(self, *keys: object) -> bool:
        for key in keys:
            if not isinstance(key, str) or not key.startswith("nex_"):
                return False
            if (await self._client.get("/api/v1/auth/me", headers={"X-API-Key": key})).status_code != 200:
                return False
        return True

    async def _mint(self, token: str, name: str, scopes: list[str]) -> str:
        minted = await self._client.post(
            "/api/v1/api-keys",
            json={"name": name, "scopes": scopes},
            headers={"Authorization": f"Bearer {token}"},
        )
        key: str = answer(minted, f"creating the key {name!r}", 201)["key"]
        return key


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a fresh 0600 file, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
