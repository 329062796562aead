"""The routing service: choosing the agent for a task, building its relay skill, keeping call records and
health evidence, and picking relayed tasks up again after a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from typing import Any

from a2a_gateway.agent import AgentEvent, Skill, SkillContext, SkillHandler
from a2a_gateway.agent.skill import SUBSCRIPTION_TAG, Admission
from a2a_gateway.auth.models import ANONYMOUS_ID
from a2a_gateway.errors import InsufficientCredits, InvalidParams, NotFound, Unauthenticated
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.registry.models import DiscoveryQuery
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.routing import ranking
from a2a_gateway.routing.calls import LOST, RoutedCall
from a2a_gateway.routing.metadata import AGENT_KEY, SKILL_KEY, merged
from a2a_gateway.routing.models import Upstream
from a2a_gateway.routing.ports import AssertionIssuer, CallEnded, CallLog, Payments, UpstreamClient
from a2a_gateway.routing.pricing import PriceAboveLimit, max_price
from a2a_gateway.routing.relay import RelayRun
from a2a_gateway.tasks.replay import caller_of_owner
from a2a_gateway.tasks.service import TaskService

log = logging.getLogger(__name__)

RELAY_SKILL_PREFIX = "relay:"
LOOKUP_TTL_SECONDS = 5.0
MAX_CACHED_LOOKUPS = 10_000


class Router:
    """Builds relay skills for registered agents and keeps their call records and health evidence.

    ``assertions`` signs the caller assertion that every upstream request of a relay carries;
    ``listeners`` are told of every call that ends (trust's evidence), in the background.
    """

    def __init__(
        self,
        registry: RegistryService,
        upstream: UpstreamClient,
        calls: CallLog,
        assertions: AssertionIssuer,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        listeners: Sequence[CallEnded] = (),
        payments: Payments | None = None,
    ) -> None:
        self._registry = registry
        self._upstream = upstream
        self._calls = calls
        self._assertions = assertions
        self._monotonic = monotonic
        self._listeners = tuple(listeners)
        self._payments = payments
        self.refused_credits = 0  # priced calls refused for want of credits (a metric)
        self.stopping = False
        # Agents' endpoints change rarely; a short cache saves a database read on every routed call.
        self._lookups: dict[str, tuple[float, Upstream]] = {}
        self._fetching: dict[str, asyncio.Task[Upstream]] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def lookup(self, agent_id: str) -> Upstream:
        """Where and how to call a registered agent (cached for a few seconds); InvalidParams if unknown.

        Concurrent callers share one read (a cache that expired under load once sent every in-flight
        call to the database at the same instant: the proxy's latency tail), and an entry past half its
        life is refreshed in the background while callers keep using it.
        """
        now = self._monotonic()
        cached = self._lookups.get(agent_id)
        if cached is not None and now - cached[0] < LOOKUP_TTL_SECONDS:
            if now - cached[0] >= LOOKUP_TTL_SECONDS / 2 and agent_id not in self._fetching:
                self._fetch(agent_id)
            return cached[1]
        reading = self._fetching.get(agent_id) or self._fetch(agent_id)
        return await asyncio.shield(reading)

    def _fetch(self, agent_id: str) -> asyncio.Task[Upstream]:
        """Start the one read of an agent that callers share until it lands."""
        reading = asyncio.create_task(self._read(agent_id, self._monotonic()))
        self._fetching[agent_id] = reading

        def landed(done: asyncio.Task[Upstream]) -> None:
            if self._fetching.get(agent_id) is done:
                del self._fetching[agent_id]
            if not done.cancelled() and not isinstance(done.exception(), (InvalidParams, type(None))):
                log.warning("reading an agent for routing failed", exc_info=done.exception())

        reading.add_done_callback(landed)
        return reading

    async def _read(self, agent_id: str, started: float) -> Upstream:
        try:
            agent = await self._registry.get(agent_id)
        except NotFound:
            self._lookups.pop(agent_id, None)
            raise InvalidParams(
                f"Unknown agent {agent_id[:64]}",
                violations=[{"field": "metadata.agentId", "description": "no such agent"}],
            ) from None
        found = Upstream(
            agent.endpoint,
            agent.protocol_version,
            agent.streaming,
            subscriptions=frozenset(s.id for s in agent.skills if SUBSCRIPTION_TAG in s.tags),
            default_skill=agent.skills[0].id if agent.skills else None,
            owner=agent.owner_id,
            price_per_task=agent.price_per_task,
            skill_prices=tuple((s.id, s.price) for s in agent.skills if s.price is not None),
        )
        if len(self._lookups) > MAX_CACHED_LOOKUPS:
            self._lookups.clear()
        self._lookups[agent_id] = (started, found)
        return found

    async def best_for(self, skill_id: str | None, tags: list[str]) -> str:
        """The id of the best online agent offering ``skill_id`` (or all ``tags``); see ranking.best."""
        page = await self._registry.discover(DiscoveryQuery(skill_tags=tags, status="online", limit=100))
        chosen = ranking.best([a for a in page.agents if ranking.offers(a, skill_id)])
        if chosen is not None:
            return chosen.id
        wanted = f"skill {skill_id}" if skill_id else f"skill tags {', '.join(tags)}"
        raise InvalidParams(
            f"No online agent offers {wanted[:200]}",
            violations=[{"field": "metadata", "description": "no online agent matches"}],
        )

    async def skill_for(self, agent_id: str, skill_id: str | None = None) -> Skill:
        """A skill that forwards the task to ``agent_id`` (InvalidParams when it is not registered); a
        call of one of the agent's subscription skills runs as a subscription."""
        upstream = await self.lookup(agent_id)
        relay = self._relay_skill(agent_id, upstream, subscription=upstream.is_subscription(skill_id))
        if self._payments is not None and (upstream.price_per_task or upstream.skill_prices):
            relay.admit = functools.partial(self._admit, agent_id, subscription=relay.subscription)
        return relay

    async def _admit(self, agent_id: str, ctx: SkillContext, *, subscription: bool) -> Admission | None:
        """Hold what the call costs before anything is stored or sent (decision 0016).

        Free when the agent charges nothing for the skill or the caller owns the agent; a priced call
        needs an authenticated caller and a price within ``metadata.maxPrice``, and a call made with a
        capped ``nex_`` key a price within what the key may still spend today (SpendCapReached). The hold
        of a subscription (the relay's task runs as one) says so: it is captured when it starts streaming.
        """
        payments = self._payments
        assert payments is not None
        upstream = await self.lookup(agent_id)
        skill_id = ctx.metadata.get(SKILL_KEY)
        price = upstream.price_of(skill_id if isinstance(skill_id, str) else None)
        payer = ctx.owner
        if price <= 0 or payer == upstream.owner:
            return None
        cap = max_price(merged(ctx.message.metadata, ctx.metadata))
        if cap is not None and price > cap:
            raise PriceAboveLimit(price=price, limit=cap)
        if not payer or payer == ANONYMOUS_ID:
            raise Unauthenticated(f"This agent charges {price} credits a call: authenticate to pay for it")
        try:
            caller = ctx.caller
            # A workflow step's task is paid from its run's budget, whose opening counted the run's key.
            capped = caller.spend_cap is not None and caller.key_id is not None and caller.budget is None
            held = await payments.hold(
                ctx.task_id,
                payer,
                price,
                payee_user_id=upstream.owner,
                subscription=subscription,
                key_id=caller.key_id if capped else None,
                daily_spend_cap=caller.spend_cap if capped else None,
                budget_id=caller.budget,
            )
        except InsufficientCredits:
            self.refused_credits += 1
            raise
        if held is None:
            return None
        ctx.caller = dataclasses.replace(ctx.caller, price=price)  # the assertion tells the agent
        task_id = ctx.task_id

        async def undo() -> None:
            await payments.release(task_id)

        return Admission(held=True, undo=undo)

    def _relay_skill(self, agent_id: str, upstream: Upstream, *, subscription: bool) -> Skill:

        def relay(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            skill_id = ctx.metadata.get(SKILL_KEY)
            skill = str(skill_id)[:100] if skill_id else None
            call = RoutedCall(
                task_id=ctx.task_id,
                requester=ctx.owner,
                agent_id=agent_id,
                skill_id=skill,
                started_at=utc_now(),
                agent_owner=upstream.owner,
                priced=upstream.price_of(skill) > 0,
            )
            return RelayRun(self._upstream, call, self, self._assertions).run(ctx)

        return self._skill(agent_id, relay, subscription)

    async def resume_skill(self, call: RoutedCall) -> Skill:
        """A skill that re-attaches a restarted gateway's task to its upstream task; its calls are made for
        the requester its record names (the key the task came with is not stored)."""
        upstream = await self.lookup(call.agent_id)
        caller = caller_of_owner(call.requester)

        def resume(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            run = RelayRun(self._upstream, call, self, self._assertions, caller=caller)
            return run.run(ctx, resume=True)

        return self._skill(call.agent_id, resume, upstream.is_subscription(call.skill_id))

    def _skill(self, agent_id: str, handler: SkillHandler, subscription: bool) -> Skill:
        return Skill(
            id=RELAY_SKILL_PREFIX + agent_id,
            name="relay",
            description="Forwards to a registered agent",
            handler=handler,
            tags=[SUBSCRIPTION_TAG] if subscription else [],
            task_metadata={AGENT_KEY: agent_id},
            resumable=True,
            checks_media_types=False,
        )

    # --- RelayHooks --------------------------------------------------------------------------------

    def record(self, call: RoutedCall) -> None:
        """Queue a call record for the next group commit."""
        self._calls.record(call)

    def settle(self, call: RoutedCall) -> None:
        """Count an ended call as health evidence (neither a cancel nor a lost call counts) and tell the
        listeners it ended."""
        if call.outcome is None:
            return
        self._announce(call)
        if call.outcome in ("canceled", LOST):
            return
        ok = not call.failed
        latency = call.first_response_ms if ok else None
        self._later(self._registry.record_outcome(call.agent_id, ok, latency), "storing agent health")

    def _announce(self, call: RoutedCall) -> None:
        for listener in self._listeners:
            self._later(listener.call_ended(call), "telling of a routed call's end")

    def _later(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``work`` in the background; a failure is logged (the call it is about has answered)."""
        job = asyncio.create_task(work)
        self._background.add(job)

        def done(finished: asyncio.Task[None]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.warning("%s failed", what, exc_info=finished.exception())

        job.add_done_callback(done)

    # --- lifecycle -----------------------------------------------------------------------------------

    async def recover(self, service: TaskService) -> tuple[int, int]:
        """At start-up: resume every relayed task left in flight; fail the other in-flight tasks.

        Returns (resumed, failed). A call whose upstream task id was never learned cannot be found
        again, so its task fails with the others and its record says ``lost``.
        """
        resumed = await self._resume(service, await self._calls.unfinished())
        failed = await service.recover(keep=resumed)
        return len(resumed), failed

    async def resume_relay(self, service: TaskService, task_id: str) -> bool | None:
        """Take one relayed task over from a gateway process that stopped: re-attached to its upstream
        task (True), or its call recorded lost (False); None when the task is no relay in flight."""
        calls = await self._calls.unfinished([task_id])
        if not calls:
            return None
        return bool(await self._resume(service, calls))

    async def _resume(self, service: TaskService, calls: list[RoutedCall]) -> list[str]:
        """Adopt each call's task under a relay re-attached upstream; a call that cannot be is lost."""
        resumed: list[str] = []
        for call in calls:
            adopted = False
            if call.upstream_task_id is not None:
                try:
                    skill = await self.resume_skill(call)
                    adopted = await service.adopt(call.requester, call.task_id, skill)
                except InvalidParams:
                    adopted = False  # the agent was deleted meanwhile
                except Exception:
                    log.exception("could not resume a relayed task", extra={"taskId": call.task_id})
                    adopted = False
            if adopted:
                resumed.append(call.task_id)
                continue
            call.outcome, call.finished_at = LOST, utc_now()
            self._calls.record(call)
            self._announce(call)
        return resumed

    async def close(self) -> None:
        """Stop: relays still running leave their records open for the next start."""
        self.stopping = True
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def release(self) -> None:
        """After the task service has stopped: finish health writes of the last calls and agent reads,
        close connections."""
        if self._fetching:
            await asyncio.gather(*list(self._fetching.values()), return_exceptions=True)
        while self._background:  # a write that ends may be followed by one queued meanwhile
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self._upstream.aclose()
