"""The signal agent's A2A skills: ``strategy-config`` and ``signal-feed``.

- ``strategy-config``: data ``{}`` (or none) answers the current config; data with fields
  (``fastWindow``, ``slowWindow``, ``volumeFactor``, ``cooldownBars``, ``symbols``, ``minStrength``)
  updates those fields, validated, and answers the new config. Only the agent's owner may change it
  (``ctx.caller.user`` equal to the gateway user the agent is registered by); anyone else is refused
  ``PERMISSION_DENIED``, an invalid document ``INVALID_CONFIG`` naming every bad field.
- ``signal-feed`` (a subscription): each signal the agent emits, once the engine answered it, as an
  artifact ``signal`` (the log entry: the signal body, the bar's figures, the outcome), until canceled.
  ``{"recent": n}`` first sends the last ``n`` logged signals (one still ``pending`` comes again once
  the engine answered it).

A refusal ends the task ``TASK_STATE_REJECTED`` with ``"CODE: message"``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Final

from a2a_gateway.agent import AgentEvent, ArtifactChunk, Skill, SkillContext, Status, skill
from a2a_gateway.protocol import v1
from agents_examples.trading.engine.jsonvalues import plain
from agents_examples.trading.signals.service import SignalService
from agents_examples.trading.signals.strategy import STRENGTH_BANDS, ConfigError, StrategyConfig

STRATEGY: Final = "ma-crossover"

OwnerLookup = Callable[[], Awaitable[str | None]]
"""The gateway user id of the agent's owner (None while it is not known)."""


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")


def config_view(config: StrategyConfig) -> dict[str, Any]:
    """The answer of ``strategy-config``: the strategy, its config and its strength bands (percent)."""
    view: dict[str, Any] = plain(
        {"strategy": STRATEGY, "config": config.to_doc(), "strengthBandsPercent": list(STRENGTH_BANDS)}
    )
    return view


class SignalSkills:
    """The skills over one :class:`SignalService`; ``owner`` tells who may change the config."""

    def __init__(self, service: SignalService, owner: OwnerLookup) -> None:
        self.service = service
        self.owner = owner

    async def _update(self, ctx: SkillContext, doc: dict[str, Any]) -> StrategyConfig:
        owner = await self.owner()
        user = ctx.caller.user
        if owner is None or user != owner:
            raise _Refused("PERMISSION_DENIED", "only the signal agent's owner may change its strategy")
        try:
            config = StrategyConfig.from_doc(doc, self.service.config)
        except ConfigError as error:
            raise _Refused("INVALID_CONFIG", str(error)[:1000]) from None
        self.service.reconfigure(config)
        return config

    def strategy_config(self) -> Skill:
        """``strategy-config``: read the config, or (the owner) change it."""

        @skill(
            "strategy-config",
            "Strategy config",
            "The moving-average crossover's parameters. Data {} answers them; data with fields "
            "(fastWindow, slowWindow, volumeFactor, cooldownBars, symbols, minStrength) changes those, "
            "validated (the agent's owner only; others are refused PERMISSION_DENIED).",
            tags=["trading", "signals", "config"],
        )
        async def strategy_config(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            data = ctx.data
            try:
                if data is not None and not isinstance(data, dict):
                    raise _Refused("INVALID_REQUEST", "send a data part (a JSON object), or none")
                config = await self._update(ctx, data) if data else self.service.config
            except _Refused as refused:
                yield Status(v1.TaskState.REJECTED, str(refused))
                return
            yield ArtifactChunk.of_data(config_view(config), name="config")

        return strategy_config

    def signal_feed(self) -> Skill:
        """``signal-feed``: the emitted signals with their outcomes, live, until canceled."""

        @skill(
            "signal-feed",
            "Signal feed",
            "Streams each signal the agent emits to the trading engine, with the engine's outcome "
            '(execution records), as artifacts until canceled; data {"recent": n} first sends the '
            "last n logged signals.",
            tags=["trading", "signals", "stream"],
            subscription=True,
        )
        async def signal_feed(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            data = ctx.data if ctx.data is not None else {}
            recent = data.get("recent", 0) if isinstance(data, dict) else None
            limit = self.service.log_size
            if isinstance(recent, bool) or not isinstance(recent, int) or not 0 <= recent <= limit:
                yield Status(
                    v1.TaskState.REJECTED, f"INVALID_REQUEST: recent must be an integer from 0 to {limit}"
                )
                return
            follower = self.service.follow()  # before the snapshot, so no signal falls between them
            try:
                yield Status(v1.TaskState.WORKING, "following the emitted signals")
                for view in self.service.recent(recent):
                    yield ArtifactChunk.of_data(plain(view), name="signal")
                async for view in follower.views():
                    yield ArtifactChunk.of_data(plain(view), name="signal")
                if follower.dropped:
                    yield Status(
                        v1.TaskState.FAILED, "SLOW_CONSUMER: too many signals waited; subscribe again"
                    )
            finally:
                self.service.leave(follower)

        return signal_feed

    def all(self) -> list[Skill]:
        """Every skill, in card order."""
        return [self.strategy_config(), self.signal_feed()]
