"""A kit agent registering itself with a gateway (by its card URL) and keeping itself online.

Registration tells the agent its id at the gateway (the audience of the caller assertions it gets) and
its owner's user id (who may call it directly). The agent then works with a per-agent ``nxk_`` key: its
heartbeats and its introspection calls need no more than that (least privilege). The key is the
``agent_key`` setting, or one minted with the owner's key once and kept in the data directory (mode
0600), so restarts reuse it. An agent registered by hand needs only its id and its ``nxk_`` key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Final

import httpx

from a2a_gateway.agent import AgentDefinition
from a2a_gateway.errors import InvalidAgentResponse, OutboundRefused
from a2a_gateway.outbound.upstream_read import read_body

log = logging.getLogger(__name__)

KEY_FILE: Final = "agent-key.json"
KEY_NAME: Final = "kit agent key"
KEY_SCOPES: Final = ["agents:read"]  # enough to read its own record; heartbeat and introspection need none
MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
_FAILURES = (httpx.HTTPError, OutboundRefused, InvalidAgentResponse)


def _key_headers(key: str) -> dict[str, str]:
    if key.startswith(("nex_", "nxk_")):
        return {"X-API-Key": key}
    return {"Authorization": f"Bearer {key}"}


class AgentKeyFile:
    """The minted per-agent key, kept under ``data_dir/secrets`` for the gateway and agent it belongs to."""

    def __init__(self, data_dir: Path) -> None:
        self._folder = data_dir / "secrets"
        self.path = self._folder / KEY_FILE

    def load(self, gateway: str, agent_id: str) -> str | None:
        """The stored key of ``agent_id`` at ``gateway``; None when none is stored for them."""
        try:
            stored = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(stored, dict) or (stored.get("gateway"), stored.get("agentId")) != (
            gateway,
            agent_id,
        ):
            return None
        key = stored.get("key")
        return key if isinstance(key, str) and key.startswith("nxk_") else None

    def save(self, gateway: str, agent_id: str, key: str) -> None:
        """Keep ``key`` (written to a fresh 0600 file, then moved into place)."""
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()  # O_CREAT keeps an existing file's mode; start from none
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"gateway": gateway, "agentId": agent_id, "key": key}, handle)
        os.replace(temporary, self.path)

    def forget(self) -> None:
        """Drop the stored key (the gateway no longer takes it)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class GatewayRegistrar:
    """Registers (or updates) the agent at start-up, then sends a heartbeat every ``interval`` seconds.

    ``owner_key`` (the owner's ``nex_`` key or a session token) registers the agent and mints its
    per-agent key; without it, ``agent_id`` and ``agent_key`` name an agent registered by hand.
    ``agent_id``, ``owner_id`` and ``agent_key`` are None until they are known.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        gateway_url: str,
        owner_key: str | None,
        *,
        agent: AgentDefinition,
        public_url: str,
        interval: float = 30.0,
        agent_id: str | None = None,
        agent_key: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        if owner_key is None and not (agent_id and agent_key):
            raise ValueError("a registrar needs the owner's key, or the agent's id and its nxk_ key")
        self._client = client
        self._gateway = gateway_url.rstrip("/")
        self._base = self._gateway + "/api/v1/agents"
        self._owner_headers = _key_headers(owner_key) if owner_key else None
        self._agent = agent
        self._public_url = public_url.rstrip("/")
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._configured_key = agent_key
        self._key_file = AgentKeyFile(data_dir) if data_dir is not None else None
        self._mint_refused = False
        self._owner_unknowable = False
        self._registered = False
        self.agent_id: str | None = agent_id
        self.owner_id: str | None = None
        self.agent_key: str | None = agent_key
        self.ready = (
            asyncio.Event()
        )  # set once the agent's id, key and owner are known (as far as they can be)

    async def start(self) -> None:
        """Register now (errors are logged; the heartbeat loop retries) and start heartbeating."""
        self._task = asyncio.create_task(self._run(), name="gateway-registrar")

    async def close(self) -> None:
        """Stop heartbeating."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        retry = 0.5  # until the first registration succeeds, retry soon (the gateway may be starting)
        while True:
            try:
                await self._step()
            except (*_FAILURES, RegistrationFailed) as exc:
                # Never log a key; the gateway's error code and status are enough to act on.
                log.warning("gateway registration or heartbeat failed: %s", exc)
            if not self._registered:
                await asyncio.sleep(min(retry, self._interval))
                retry *= 2
            else:
                await asyncio.sleep(self._interval)

    async def _step(self) -> None:
        if not self._registered:
            if self._owner_headers is not None:
                self.agent_id, self.owner_id = await self._register()
                log.info("registered with the gateway", extra={"agentId": self.agent_id})
            self._registered = True
        if self.agent_key is None and self._owner_headers is not None and not self._mint_refused:
            await self._obtain_key()
        if self.owner_id is None and not self._owner_unknowable:
            await self._learn_owner()
        self.ready.set()
        await self._heartbeat()

    async def _register(self) -> tuple[str, str | None]:
        skills = [
            {"id": s.id, "name": s.name, "description": s.description, "tags": s.tags}
            for s in self._agent.skills
        ]
        patch = {"name": self._agent.name, "description": self._agent.description, "skills": skills}
        if self.agent_id is not None:
            updated = await self._call("PATCH", f"{self._base}/{self.agent_id}", patch)
            return str(updated["id"]), _owner_of(updated)
        endpoint = self._public_url + "/a2a"
        mine = await self._call("GET", self._base)
        for existing in mine:
            if existing.get("endpoint") == endpoint:
                updated = await self._call("PATCH", f"{self._base}/{existing['id']}", patch)
                return str(existing["id"]), _owner_of(updated) or _owner_of(existing)
        created = await self._call("POST", self._base, {"cardUrl": self._public_url})
        return str(created["id"]), _owner_of(created)

    async def _obtain_key(self) -> None:
        assert self.agent_id is not None and self._owner_headers is not None
        if self._key_file is not None:
            stored = self._key_file.load(self._gateway, self.agent_id)
            if stored is not None:
                self.agent_key = stored
                return
        body = {"name": KEY_NAME, "scopes": KEY_SCOPES}
        try:
            issued = await self._call("POST", f"{self._base}/{self.agent_id}/api-keys", body)
        except RegistrationFailed as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                # Not retried: the owner's key may not mint keys (keys:write); heartbeats keep using it.
                self._mint_refused = True
                log.warning(
                    "could not mint a per-agent key (%s): heartbeats use the owner's key, and nex_ keys "
                    "presented directly cannot be verified; set agent_key or give the key keys:write",
                    exc,
                )
                return
            raise
        key = issued.get("key") if isinstance(issued, dict) else None
        if not isinstance(key, str) or not key.startswith("nxk_"):
            raise RegistrationFailed("the gateway's key route answered without an nxk_ key")
        self.agent_key = key
        if self._key_file is not None:
            self._key_file.save(self._gateway, self.agent_id, key)

    async def _learn_owner(self) -> None:
        try:
            view = await self._call("GET", f"{self._base}/{self.agent_id}", headers=self._headers())
        except RegistrationFailed as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                self._owner_unknowable = True
                log.warning(
                    "could not read this agent's record at the gateway (%s): its owner is unknown", exc
                )
                return
            raise
        self.owner_id = _owner_of(view)

    async def _heartbeat(self) -> None:
        url = f"{self._base}/{self.agent_id}/heartbeat"
        try:
            await self._call("POST", url, {"status": "online"}, headers=self._headers())
        except RegistrationFailed as exc:
            minted = self.agent_key is not None and self.agent_key != self._configured_key
            if exc.status == 401 and minted and self._owner_headers is not None:
                # The minted key was revoked or expired: mint another on the next round.
                self.agent_key = None
                if self._key_file is not None:
                    self._key_file.forget()
            raise

    def _headers(self) -> dict[str, str]:
        if self.agent_key is not None:
            return _key_headers(self.agent_key)
        assert self._owner_headers is not None
        return self._owner_headers

    async def _call(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sent = {"Accept-Encoding": "identity", **(headers or self._owner_headers or {})}
        async with self._client.stream(method, url, json=body, headers=sent) as response:
            raw = await read_body(response, MAX_ANSWER_BYTES)
            status = response.status_code
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if status >= 400 or not isinstance(answer, dict) or "data" not in answer:
            try:
                code = answer["error"]["code"]
            except (KeyError, TypeError):
                code = "unknown"
            raise RegistrationFailed(f"{method} {url} answered HTTP {status} ({code})", status)
        return answer["data"]


def _owner_of(view: Any) -> str | None:
    owner = view.get("ownerId") if isinstance(view, dict) else None
    return owner if isinstance(owner, str) and owner else None


class RegistrationFailed(Exception):
    """The gateway refused a registration or heartbeat call."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
