"""The engine's A2A skills: ``signal-intake``, ``positions-stream``, ``close-position``, ``performance``.

Each acts for ``ctx.caller.user``: the gateway user the gateway's caller assertion vouches for (or the
owner calling directly with a gateway credential). A call without a user is refused. The skills run
the REST API's own service operations, so their rules and refusals are the same; a refusal ends the
task ``TASK_STATE_REJECTED`` with ``"CODE: message"``.

- ``signal-intake``: a signal (``tokenAddress``, ``signalType``, ``signalStrength``, ...) in; the
  artifact ``executions`` holds ``{signal, executions}`` once none is pending.
- ``positions-stream``: ``{"agentId"}``; one artifact per event: ``connected``, ``initial_data``, then
  ``position_update``, ``price_update_batch`` and ``risk_event`` until canceled.
- ``close-position``: ``{"positionId", "agentId"?, "reason"?}``; the artifact ``swap`` is the
  historical swap.
- ``performance``: ``{"agentId", "timeframe"?}``; the artifact ``performance``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any, Final

from a2a_gateway.agent import AgentEvent, ArtifactChunk, Skill, SkillContext, Status, skill
from a2a_gateway.protocol import v1
from agents_examples.trading.engine.domain.signals import SignalError, parse_signal
from agents_examples.trading.engine.errors import EngineError, invalid
from agents_examples.trading.engine.events import envelope
from agents_examples.trading.engine.jsonvalues import plain
from agents_examples.trading.engine.service import EngineService, signal_error

log = logging.getLogger(__name__)

SETTLE_SECONDS: Final = 30.0


def _user(ctx: SkillContext) -> str:
    user = ctx.caller.user
    if not user:
        raise EngineError(401, "UNAUTHENTICATED", "call through the gateway (or with a gateway credential)")
    return user


def _data(ctx: SkillContext) -> dict[str, Any]:
    data = ctx.data
    if not isinstance(data, dict):
        raise invalid("send a data part (a JSON object)")
    return data


class EngineSkills:
    """The skills over one :class:`EngineService`."""

    def __init__(self, service: EngineService, *, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.service = service
        self.settle_seconds = settle_seconds

    def signal_intake(self) -> Skill:
        """``signal-intake``: a signal in, the execution records out."""

        @skill(
            "signal-intake",
            "Signal intake",
            "Takes a trading signal (data: tokenAddress, symbol, signalType buy|sell|…, signalStrength "
            "1-5, activationReason, source; the seed's action/score accepted) posted by the calling "
            "user; every trading agent following that user decides it. Completes with {signal, "
            "executions}: one record per agent, EXECUTED, FAILED or SKIPPED with a reason code.",
            tags=["trading", "signals"],
        )
        async def signal_intake(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            try:
                user = _user(ctx)
                try:
                    signal = parse_signal(_data(ctx))
                except SignalError as error:
                    raise signal_error(error) from None
                doc, executions = self.service.post_signal(user, signal)
            except EngineError as refused:
                yield Status(v1.TaskState.REJECTED, f"{refused.code}: {refused.message}")
                return
            yield Status(v1.TaskState.WORKING, f"signal {doc['id']} reached {len(executions)} agent(s)")
            settled = await self.service.settled(executions, self.settle_seconds)
            body = {"signal": doc, "executions": [e.view() for e in settled]}
            yield ArtifactChunk.of_data(plain(body), name="executions")

        return signal_intake

    def positions_stream(self) -> Skill:
        """``positions-stream``: a trading agent's positions, live, until canceled."""

        @skill(
            "positions-stream",
            "Positions stream",
            'Streams one of the caller\'s trading agents, data {"agentId"}: connected, initial_data '
            "{positions}, then position_update, price_update_batch and risk_event messages (Nexgent's "
            "WebSocket envelope {type, data, timestamp}) as artifacts, until canceled.",
            tags=["trading", "positions", "stream"],
            subscription=True,
        )
        async def positions_stream(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            try:
                user = _user(ctx)
                agent_id = _data(ctx).get("agentId")
                if not isinstance(agent_id, str) or not agent_id:
                    raise invalid("agentId is required", field="agentId")
                agent = self.service.agent(user, agent_id)
            except EngineError as refused:
                yield Status(v1.TaskState.REJECTED, f"{refused.code}: {refused.message}")
                return
            hub = self.service.hub
            follower = hub.follow(agent.id)  # before the snapshot, so no event falls between them
            try:
                yield Status(v1.TaskState.WORKING, f"following agent {agent.id}")
                yield ArtifactChunk.of_data(envelope("connected", {"agentId": agent.id}), name="connected")
                positions = self.service.initial_positions(agent.id)
                yield ArtifactChunk.of_data(
                    envelope("initial_data", {"positions": positions}), name="initial_data"
                )
                async for message in follower.messages():
                    yield ArtifactChunk.of_data(_public(message), name=str(message["type"]))
                if follower.dropped:
                    yield Status(
                        v1.TaskState.FAILED, "SLOW_CONSUMER: too many events waited; subscribe again"
                    )
            finally:
                hub.leave(follower)

        return positions_stream

    def close_position(self) -> Skill:
        """``close-position``: sell all of one of the caller's positions now."""

        @skill(
            "close-position",
            "Close position",
            'Sells all of one of the caller\'s open positions at the market: data {"positionId", '
            '"agentId"?, "reason"? (manual)}. Completes with the historical swap.',
            tags=["trading", "positions"],
        )
        async def close_position(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            try:
                user = _user(ctx)
                data = _data(ctx)
                position_id, agent_id, reason = (data.get(k) for k in ("positionId", "agentId", "reason"))
                if not isinstance(position_id, str) or not position_id:
                    raise invalid("positionId is required", field="positionId")
                if agent_id is not None and not isinstance(agent_id, str):
                    raise invalid("agentId must be a string", field="agentId")
                if reason is not None and not isinstance(reason, str):
                    raise invalid("reason must be a string", field="reason")
                swap = await self.service.close_position(user, position_id, agent_id, reason)
            except EngineError as refused:
                yield Status(v1.TaskState.REJECTED, f"{refused.code}: {refused.message}")
                return
            yield ArtifactChunk.of_data(swap, name="swap")

        return close_position

    def performance(self) -> Skill:
        """``performance``: one of the caller's trading agents' performance metrics."""

        @skill(
            "performance",
            "Performance",
            'Performance of one of the caller\'s trading agents: data {"agentId", "timeframe": "24h"|'
            '"all" (all)}: P/L, win rate, profit factor, expectancy, max drawdown, Sharpe, Sortino.',
            tags=["trading", "performance"],
        )
        async def performance(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            try:
                user = _user(ctx)
                data = _data(ctx)
                agent_id, timeframe = data.get("agentId"), data.get("timeframe", "all")
                if not isinstance(agent_id, str) or not agent_id:
                    raise invalid("agentId is required", field="agentId")
                if not isinstance(timeframe, str):
                    raise invalid("timeframe must be '24h' or 'all'", field="timeframe")
                found = self.service.performance(user, agent_id, timeframe)
            except EngineError as refused:
                yield Status(v1.TaskState.REJECTED, f"{refused.code}: {refused.message}")
                return
            doc = {"agentId": agent_id, "timeframe": timeframe, **plain(found.to_doc())}
            yield ArtifactChunk.of_data(doc, name="performance")

        return performance

    def all(self) -> list[Skill]:
        """Every skill, in card order."""
        return [self.signal_intake(), self.positions_stream(), self.close_position(), self.performance()]


def _public(message: dict[str, Any]) -> dict[str, Any]:
    """A hub message without the private keys the WebSocket adds (its pre-encoded text)."""
    return {k: v for k, v in message.items() if not k.startswith("_")}
