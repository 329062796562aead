"""Ports of the registry."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from a2a_gateway.protocol import v1
from a2a_gateway.registry.health import HealthChange
from a2a_gateway.registry.models import Agent, DiscoveryPage, DiscoveryQuery


class AgentRepository(Protocol):
    """Durable store of registered agents."""

    async def add(self, agent: Agent) -> None:
        """Store a new agent."""
        ...

    async def get(self, agent_id: str) -> Agent | None:
        """One agent by id."""
        ...

    async def save(self, agent: Agent) -> None:
        """Replace an agent's stored state."""
        ...

    async def save_heartbeat(self, agent: Agent) -> None:
        """Write only an agent's reported status, metadata and last heartbeat."""
        ...

    async def delete(self, agent_id: str) -> bool:
        """Remove an agent; False when there was none."""
        ...

    async def for_owner(self, owner_id: str) -> list[Agent]:
        """An owner's agents, newest first."""
        ...

    async def discover(
        self, query: DiscoveryQuery, now: datetime, offline_after_seconds: float
    ) -> DiscoveryPage:
        """Agents matching the query, ranked by trust then recency."""
        ...

    async def all(self) -> list[Agent]:
        """Every registered agent (for the health prober)."""
        ...

    async def set_health(self, agent_id: str, change: HealthChange) -> None:
        """Store whether an agent's calls are failing and its smoothed latency."""
        ...

    async def set_probe(self, agent_id: str, ok: bool, at: datetime) -> None:
        """Store the outcome of an active health check."""
        ...


class EndpointCheck(Protocol):
    """Refuses agent endpoints the gateway must not call (the SSRF guard)."""

    async def check(self, url: str) -> None:
        """Raise OutboundRefused for a forbidden destination."""
        ...


class CardSource(Protocol):
    """Fetches an agent's published card."""

    async def fetch(self, url: str) -> v1.AgentCard:
        """The card (in 1.0 form); InvalidParams says why it could not be used."""
        ...
