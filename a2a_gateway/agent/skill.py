"""A skill: metadata for the card plus an async-generator handler."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from a2a_gateway.agent.caller import ANONYMOUS, Caller
from a2a_gateway.agent.events import AgentEvent
from a2a_gateway.protocol import v1


@dataclass(slots=True)
class SkillContext:
    """What a handler knows about the call it serves."""

    task_id: str
    context_id: str
    message: v1.Message
    metadata: dict[str, Any]
    history: list[v1.Message] = field(default_factory=list)
    # The caller follows the task as it runs (a stream, or a task handed back at once to poll): a relay
    # then streams upstream too, so it learns the upstream task id early and can resume after a restart.
    streaming: bool = False
    owner: str = ""  # who asked (the task's owner)
    caller: Caller = ANONYMOUS  # who the call is made for, and whether the gateway vouches for it
    # True while the kit runs the handler again after a restart to bring a paused task back to the pause
    # it was in: what it yields meanwhile is dropped (the task holds it already), and a handler with side
    # effects (an order placed, a mail sent) skips them. False again once the caller's new reply arrives.
    replaying: bool = False
    # A skill taking a stored task back (after a restart, or from a gateway process that stopped): the
    # artifacts the task holds already, so it passes on only what comes after them.
    artifacts: list[v1.Artifact] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text parts of the triggering message, joined by newlines."""
        return message_text(self.message)

    @property
    def data(self) -> Any:
        """The first data part of the triggering message, or None."""
        for part in self.message.parts:
            if part.data is not None:
                return part.data
        return None


def message_text(message: v1.Message) -> str:
    """The text parts of a message, joined by newlines."""
    return "\n".join(p.text for p in message.parts if p.text is not None)


SUBSCRIPTION_TAG = "subscription"
"""The card tag of a skill whose task is meant never to end (market data, order updates, positions): its
events are relayed live and the task keeps only a rolling window of the latest; a caller ends it by
cancelling."""

SkillHandler = Callable[[SkillContext], AsyncGenerator[AgentEvent, v1.Message | None]]
"""A handler yields events; after ``InputRequired`` it receives the follow-up message via ``asend``."""


@dataclass(frozen=True, slots=True)
class Admission:
    """What a skill's admission reserved for a task about to be created (a relay: the held price).

    ``undo`` gives it back when no task comes of the call (a refusal before the first event, a direct
    reply); once the task exists, its end settles what ``held`` says it holds.
    """

    held: bool = False
    undo: Callable[[], Awaitable[None]] | None = None


AdmitHook = Callable[["SkillContext"], Awaitable[Admission | None]]


@dataclass(slots=True)
class Skill:
    """One capability of an agent."""

    id: str
    name: str
    description: str
    handler: SkillHandler
    tags: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    input_modes: list[str] | None = None
    output_modes: list[str] | None = None
    task_metadata: dict[str, Any] | None = None  # set on tasks this skill runs (e.g. the routed agent)
    # A task of a resumable skill is left in flight at shutdown (not failed): the app picks it up again
    # at the next start (a relay re-attaches to the upstream task).
    resumable: bool = False
    # False for a skill that hands messages on to another agent (a relay): that agent judges media types.
    checks_media_types: bool = True
    # Runs before the task is created, for every kind of send: it may refuse (raise a GatewayError: no
    # task, nothing stored) or reserve what the call costs (decision 0016), and may update the context.
    admit: AdmitHook | None = None

    @property
    def subscription(self) -> bool:
        """Whether the skill's tasks are subscriptions (tagged ``subscription`` on the card)."""
        return SUBSCRIPTION_TAG in self.tags

    def card_entry(self) -> v1.AgentSkill:
        """This skill as it appears on an agent card."""
        return v1.AgentSkill(
            id=self.id,
            name=self.name,
            description=self.description,
            tags=self.tags,
            examples=self.examples or None,
            input_modes=self.input_modes,
            output_modes=self.output_modes,
        )


def skill(
    id: str,
    name: str,
    description: str,
    *,
    tags: list[str] | None = None,
    examples: list[str] | None = None,
    subscription: bool = False,
) -> Callable[[SkillHandler], Skill]:
    """Decorator turning an async generator function into a Skill (``subscription`` tags it as one)."""
    all_tags = list(tags or [])
    if subscription and SUBSCRIPTION_TAG not in all_tags:
        all_tags.append(SUBSCRIPTION_TAG)

    def wrap(handler: SkillHandler) -> Skill:
        return Skill(
            id=id,
            name=name,
            description=description,
            handler=handler,
            tags=all_tags,
            examples=examples or [],
        )

    return wrap
