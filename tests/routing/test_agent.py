"""RoutingAgent.resolve over in-memory fakes: a named agent, a skill no local skill serves, or skill tags
route to a registered agent; anything else is one of the gateway's own skills."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest

from a2a_gateway.agent import AgentDefinition, AgentEvent, Reply, Skill, SkillContext, skill
from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import InvalidParams
from a2a_gateway.protocol import v1
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.registry.spec import AgentRegistration
from a2a_gateway.routing.agent import RoutingAgent
from a2a_gateway.routing.service import RELAY_SKILL_PREFIX, Router
from tests.factories import Clock
from tests.fakes import (
    FakeAgentRepository,
    FakeAssertions,
    FakeCallLog,
    FakeCardSource,
    FakeEndpointCheck,
    FakeUpstream,
)

OWNER = Principal(id="owner", kind="user", scopes=frozenset({"*"}))


@skill("echo", "Echo", "Says it back")
async def echo(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    yield Reply.text(ctx.text)


@skill("discover", "Discover", "Finds agents")
async def discover(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    yield Reply.text("none")


class Gateway:
    """The gateway's routing agent over a registry on fakes."""

    def __init__(self) -> None:
        self.registry = RegistryService(
            FakeAgentRepository(), FakeEndpointCheck(), FakeCardSource(), clock=Clock()
        )
        router = Router(self.registry, FakeUpstream(), FakeCallLog(), FakeAssertions())
        own = AgentDefinition(name="Gateway", description="Routes", skills=[echo, discover])
        self.agent = RoutingAgent.around(own, router)

    async def online(self, name: str, skills: dict[str, list[str]]) -> str:
        """An online agent with these skills (id to tags)."""
        spec = AgentRegistration.model_validate(
            {
                "name": name,
                "endpoint": f"https://{name}.example/a2a",
                "skills": [{"id": s, "name": s, "tags": tags} for s, tags in skills.items()],
            }
        )
        agent = await self.registry.register(OWNER, spec)
        await self.registry.heartbeat(OWNER, agent.id, None, None)
        return agent.id

    async def resolve(
        self, request: dict[str, Any] | None = None, message: dict[str, Any] | None = None
    ) -> Skill:
        text = v1.Message(message_id="m1", role=v1.Role.USER, parts=[v1.Part(text="hi")], metadata=message)
        return await self.agent.resolve(text, request)


def relay_to(agent_id: str) -> str:
    return RELAY_SKILL_PREFIX + agent_id


@pytest.fixture
async def gw() -> Gateway:
    return Gateway()


async def test_a_named_agent_is_routed_to_whatever_else_is_asked(gw: Gateway) -> None:
    seven = await gw.online("seven", {"x": []})
    chosen = await gw.resolve({"agentId": seven, "skillId": "echo", "skillTags": "nlp"})
    assert chosen.id == relay_to(seven) and chosen.task_metadata == {"agentId": seven}
    assert chosen.resumable and not chosen.checks_media_types


async def test_the_request_names_the_agent_over_the_message(gw: Gateway) -> None:
    in_message, in_request = await gw.online("m", {"x": []}), await gw.online("r", {"x": []})
    assert (await gw.resolve(message={"agentId": in_message})).id == relay_to(in_message)
    both = await gw.resolve({"agentId": in_request}, {"agentId": in_message})
    assert both.id == relay_to(in_request)


async def test_an_unknown_agent_is_refused_at_once(gw: Gateway) -> None:
    with pytest.raises(InvalidParams, match="Unknown agent"):
        await gw.resolve({"agentId": "no-such-agent"})


async def test_a_skill_no_local_skill_serves_goes_to_the_best_agent_offering_it(gw: Gateway) -> None:
    ocr = await gw.online("ocr", {"ocr": []})
    await gw.online("translator", {"translate": []})
    assert (await gw.resolve({"skillId": "ocr"})).id == relay_to(ocr)
    assert (await gw.resolve(message={"skillId": "ocr"})).id == relay_to(ocr)


async def test_skill_tags_without_a_skill_go_to_an_agent_with_all_of_them(gw: Gateway) -> None:
    await gw.online("nlp-only", {"summarize": ["nlp"]})
    both = await gw.online("both", {"translate": ["nlp", "translate"]})
    assert (await gw.resolve({"skillTags": "nlp, translate"})).id == relay_to(both)
    assert (await gw.resolve(message={"skillTags": ["translate", "NLP"]})).id == relay_to(both)


async def test_an_unserved_skill_with_no_agent_offering_it_is_invalid_params(gw: Gateway) -> None:
    with pytest.raises(InvalidParams) as none:
        await gw.resolve({"skillId": "ocr"})
    assert "No online agent offers skill ocr" in none.value.message


async def test_otherwise_a_local_skill_serves(gw: Gateway) -> None:
    await gw.online("echo-too", {"echo": ["nlp"]})
    assert (await gw.resolve()).id == "echo"  # nothing asked: the first skill
    assert (await gw.resolve({"skillId": "discover"})).id == "discover"
    # A local skill is asked for by id: tags do not send it elsewhere.
    assert (await gw.resolve({"skillId": "echo", "skillTags": "nlp"})).id == "echo"


@pytest.mark.parametrize("tags", [" , ", "  ", [1, 2], {"a": 1}, ["", " "]])
async def test_skill_tags_that_name_no_tag_route_nowhere(gw: Gateway, tags: Any) -> None:
    await gw.online("anyone", {"anything": []})
    assert (await gw.resolve({"skillTags": tags})).id == "echo"


async def test_around_keeps_the_agent_as_it_was(gw: Gateway) -> None:
    assert gw.agent.name == "Gateway" and [s.id for s in gw.agent.skills] == ["echo", "discover"]
