"""Cards of registered agents as served by the gateway: their interfaces point at the gateway's proxy."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.api.cards import Clock, FirstServed, asked_form, card_response
from a2a_gateway.api.errors import error_response
from a2a_gateway.errors import GatewayError
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.protocol.card import build_card, render
from a2a_gateway.registry.models import Agent

PROXY_PATH = "/a2a/agents/{agent_id}"
# What a call costs through the gateway, declared as an A2A extension so a client sees it before calling
# (docs/api.md). Optional: a client that does not know it calls as usual and is charged the same.
PRICING_EXTENSION_URI = "urn:a2a-gateway:extension:pricing:v1"


def pricing_extension(agent: Agent) -> v1.AgentExtension:
    """The agent's prices (credits per call, per skill) and trust score as the gateway holds them."""
    return v1.AgentExtension(
        uri=PRICING_EXTENSION_URI,
        description="Credits one call costs through the gateway, per skill, and the agent's trust score",
        required=False,
        params={
            "currency": "credits",
            "pricePerTask": agent.price_per_task,
            "skills": {s.id: agent.price_of(s.id) for s in agent.skills},
            "trustScore": agent.trust_score,
        },
    )


class AgentLookup(Protocol):
    """Finds a registered agent (the registry service)."""

    async def get(self, agent_id: str) -> Agent:
        """The agent; NotFound when there is none."""
        ...


class ProxyCards:
    """An agent's card as reached through the gateway (``/a2a/agents/{agentId}/.well-known/...``)."""

    def __init__(
        self,
        registry: AgentLookup,
        public_url: str,
        push: bool,
        anonymous_allowed: bool,
        max_age: int,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._registry = registry
        self._base = public_url.rstrip("/")
        self._push = push
        self._anonymous = anonymous_allowed
        self._cache_control = f"public, max-age={max_age}"
        self._first_served = FirstServed(clock)

    def card(self, agent: Agent) -> v1.AgentCard:
        """The card: the agent's identity and skills; the gateway's interfaces, security and features."""
        skills = [v1.AgentSkill(id=s.id, name=s.name, description=s.description or s.name, tags=s.tags)
                  for s in agent.skills]  # fmt: skip
        template = {
            "name": agent.name,
            "description": agent.description or agent.name,
            "version": str(agent.metadata.get("version", "1.0.0")),
            "defaultInputModes": ["text/plain", "application/json"],
            "defaultOutputModes": ["text/plain", "application/json"],
        }
        url = self._base + PROXY_PATH.format(agent_id=agent.id)
        capabilities = v1.AgentCapabilities(
            streaming=True, push_notifications=self._push, extensions=[pricing_extension(agent)]
        )
        return build_card(template, url, skills, capabilities, anonymous_allowed=self._anonymous)

    async def serve(self, request: Request) -> Response:
        """The card in the form asked for (both versions' fields when none is named), with validators."""
        try:
            agent = await self._registry.get(request.path_params["agent_id"])
        except GatewayError as error:
            return error_response(error)
        rendered = render(self.card(agent), asked_form(request))
        since = self._first_served.since(agent.id, rendered.etag)
        return card_response(request, rendered, self._cache_control, since)
