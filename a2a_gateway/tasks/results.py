"""What the task service hands back: a send's outcome, and a subscription with its snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from a2a_gateway.protocol import v1
from a2a_gateway.tasks.broker import Subscription


@dataclass(slots=True)
class SendResult:
    """Outcome of a send: a direct message, or a task (a snapshot, or a stream of its events)."""

    message: v1.Message | None = None
    task: v1.Task | None = None
    stream: Subscription | None = None


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A subscription with the snapshot it starts from: the snapshot reflects the task's events up to
    ``current``; ``resumed``: the subscription picks up right after the number a client asked for."""

    snapshot: v1.Task
    sub: Subscription
    current: int
    resumed: bool
