"""Ports of routing: the upstream A2A client, the signer of caller assertions and the call records; the
composition root fills them."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection
from datetime import datetime
from typing import Protocol

from a2a_gateway.agent.caller import Caller
from a2a_gateway.errors import UnsupportedOperation
from a2a_gateway.protocol import v1
from a2a_gateway.routing.calls import RoutedCall


class StreamingRefused(UnsupportedOperation):
    """The agent answered a streaming call with "unsupported" or "method not found" (it does not stream)."""


class UpstreamClient(Protocol):
    """Calls a registered agent's JSON-RPC endpoint in its protocol version; answers come back in 1.0.

    Every call takes the caller assertion to send with it (the ``A2A-Caller-Assertion`` header), one per
    HTTP request; it is a bearer credential while it lasts, so it is never logged.
    Failures are gateway errors: UpstreamUnavailable (unreachable, timed out, HTTP error),
    InvalidAgentResponse (not A2A, or too large), or the agent's own A2A error passed on.
    """

    def stream(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        """Send a message and yield the upstream events (StreamingRefused before the first one)."""
        ...

    def subscribe(
        self, url: str, version: str, task_id: str, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        """Re-attach to a running upstream task and yield what follows."""
        ...

    async def send(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> v1.StreamResponse:
        """A blocking send: the upstream's final (or paused) task, or its direct message."""
        ...

    async def get_task(
        self, url: str, version: str, task_id: str, *, assertion: str | None = None
    ) -> v1.Task:
        """The upstream task as the agent has it now."""
        ...

    async def cancel(self, url: str, version: str, task_id: str, *, assertion: str | None = None) -> None:
        """Best-effort cancel of an upstream task (never raises)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class AssertionIssuer(Protocol):
    """Signs caller assertions: the gateway's word to an agent about who a relayed call is made for."""

    async def issue(
        self,
        agent_id: str,
        caller: Caller,
        *,
        task: str | None = None,
        skill: str | None = None,
        price: int | None = None,
    ) -> str:
        """A fresh assertion (its own ``jti``) for one call to ``agent_id`` made for ``caller``."""
        ...


class CallLog(Protocol):
    """Durable records of routed calls."""

    def record(self, call: RoutedCall) -> None:
        """Queue the call's current state for the next group commit (with the task writes)."""
        ...

    async def get(self, task_id: str) -> RoutedCall | None:
        """The record of one gateway task, if it was routed."""
        ...

    async def unfinished(self, task_ids: Collection[str] | None = None) -> list[RoutedCall]:
        """Records still in flight (of ``task_ids``, when given): what a restarted gateway, or one taking
        a stopped process's tasks over, looks at."""
        ...


class CallEnded(Protocol):
    """Told of every routed call that ended, once its outcome is recorded (trust counts it as evidence).

    Run in the background after the call has answered its caller: a failure here is logged by the
    router and never reaches the call.
    """

    async def call_ended(self, call: RoutedCall) -> None:
        """React to a call's end (``call.outcome`` is set)."""
        ...


class Payments(Protocol):
    """Holds a priced call's price before the agent is called (billing.service.BillingService)."""

    @property
    def fee_bps(self) -> int:
        """The platform fee rate a new hold snapshots."""
        ...

    async def hold(
        self,
        task_id: str,
        payer_user_id: str,
        price: int,
        *,
        payee_user_id: str,
        fee_bps: int | None = None,
        expires_at: datetime | None = None,
        subscription: bool = False,
        key_id: str | None = None,
        daily_spend_cap: int | None = None,
        budget_id: str | None = None,
    ) -> object | None:
        """Hold ``price`` for the task; None when it is free. InsufficientCredits (nothing written) when the
        payer cannot cover it. ``subscription``: the task is a subscription, captured when it starts
        streaming. ``key_id`` and ``daily_spend_cap``: the caller's key and its cap, which the hold
        counts against (SpendCapReached, nothing written, when it would pass it). ``budget_id``: a
        workflow step's run, whose budget pays the price (InsufficientCredits when it cannot)."""
        ...

    async def release(self, task_id: str) -> object | None:
        """Give a task's held price back (no task came of the call)."""
        ...
