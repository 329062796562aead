"""Skills that exercise the protocol: an artifact, a chunked stream, a question, and who is calling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from a2a_gateway.agent import (
    AgentDefinition,
    AgentEvent,
    ArtifactChunk,
    InputRequired,
    SkillContext,
    Status,
    skill,
)
from a2a_gateway.agent.skill import message_text
from a2a_gateway.protocol import v1

COUNTDOWN_STEP_SECONDS = 0.1
COUNTDOWN_MAX = 100


@skill(
    "echo", "Echo", "Returns the text it receives as an artifact.", tags=["echo", "test"], examples=["hello"]
)
async def echo(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    """Echo the message text (or its data part) back."""
    if ctx.text:
        yield ArtifactChunk.of_text(ctx.text, name="echo")
    else:
        yield ArtifactChunk.of_data(ctx.data, name="echo")


@skill(
    "countdown",
    "Countdown",
    "Streams N artifact chunks, one every 100 ms (N from the message text, 1 to 100, default 5).",
    tags=["stream", "test"],
    examples=["5"],
)
async def countdown(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    """Count down from N, one appended chunk at a time."""
    text = ctx.text.strip()
    n = int(text) if text.isdigit() else 5
    if not 1 <= n <= COUNTDOWN_MAX:
        yield Status(v1.TaskState.REJECTED, f"N must be between 1 and {COUNTDOWN_MAX}")
        return
    yield Status(v1.TaskState.WORKING, f"Counting down from {n}")
    for i in range(n, 0, -1):
        await asyncio.sleep(COUNTDOWN_STEP_SECONDS)
        yield ArtifactChunk.of_text(
            str(i), name="countdown", artifact_id="countdown", append=i != n, last_chunk=i == 1
        )


@skill("ask", "Ask", "Asks for your name, then greets you (goes to input-required).", tags=["input", "test"])
async def ask(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    """Ask a question and answer the follow-up in the same task."""
    reply = yield InputRequired("What is your name?")
    name = message_text(reply).strip() if reply is not None else ""
    yield ArtifactChunk.of_text(f"Hello, {name or 'stranger'}!", name="greeting")


@skill(
    "whoami",
    "Who am I",
    "Says who the call is made for, as the agent sees it: the gateway user, whether the gateway vouched "
    "for it, and the gateway task.",
    tags=["identity", "test"],
)
async def whoami(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    """The caller the kit verified (ctx.caller): what a skill scopes per-user answers by."""
    caller = ctx.caller
    yield ArtifactChunk.of_data(
        {
            "user": caller.user,
            "viaGateway": caller.via_gateway,
            "gatewayTask": caller.task,
            "skill": caller.skill,
            "keyKind": caller.key_kind,
        },
        name="caller",
    )


ECHO_AGENT = AgentDefinition(
    name="Echo Agent",
    description="Example agent: echoes text, streams a countdown, asks for input, and says who is calling.",
    skills=[echo, countdown, ask, whoami],
    version="1.0.0",
)
