"""A kit agent registering itself with a gateway (by its card URL) and keeping itself online."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx

from a2a_gateway.agent import AgentDefinition

log = logging.getLogger(__name__)


class GatewayRegistrar:
    """Registers (or updates) the agent at start-up, then sends a heartbeat every ``interval`` seconds."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        gateway_url: str,
        owner_key: str,
        *,
        agent: AgentDefinition,
        public_url: str,
        interval: float = 30.0,
    ) -> None:
        self._client = client
        self._base = gateway_url.rstrip("/") + "/api/v1/agents"
        key_header = "X-API-Key" if owner_key.startswith("nex_") else "Authorization"
        self._headers = {key_header: owner_key if key_header == "X-API-Key" else f"Bearer {owner_key}"}
        self._agent = agent
        self._public_url = public_url.rstrip("/")
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.agent_id: str | None = None

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
                if self.agent_id is None:
                    self.agent_id = await self._register()
                    log.info("registered with the gateway", extra={"agentId": self.agent_id})
                await self._call("POST", f"{self._base}/{self.agent_id}/heartbeat", {"status": "online"})
            except (httpx.HTTPError, RegistrationFailed) as exc:
                # Never log the key; the gateway's error code and status are enough to act on.
                log.warning("gateway registration or heartbeat failed: %s", exc)
            if self.agent_id is None:
                await asyncio.sleep(min(retry, self._interval))
                retry *= 2
            else:
                await asyncio.sleep(self._interval)

    async def _register(self) -> str:
        endpoint = self._public_url + "/a2a"
        mine = await self._call("GET", self._base)
        for existing in mine:
            if existing.get("endpoint") == endpoint:
                skills = [
                    {"id": s.id, "name": s.name, "description": s.description, "tags": s.tags}
                    for s in self._agent.skills
                ]
                patch = {"name": self._agent.name, "description": self._agent.description, "skills": skills}
                await self._call("PATCH", f"{self._base}/{existing['id']}", patch)
                return str(existing["id"])
        created = await self._call("POST", self._base, {"cardUrl": self._public_url})
        return str(created["id"])

    async def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._client.request(method, url, json=body, headers=self._headers)
        if response.status_code >= 400:
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "unknown"
            raise RegistrationFailed(f"{method} {url} answered HTTP {response.status_code} ({code})")
        return response.json()["data"]


class RegistrationFailed(Exception):
    """The gateway refused a registration or heartbeat call."""
