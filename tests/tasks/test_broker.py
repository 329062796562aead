"""The in-process broker: ordered fan-out, independent subscribers, slow readers cut off loudly."""

from __future__ import annotations

import pytest

from a2a_gateway.errors import Unavailable
from a2a_gateway.protocol import v1
from a2a_gateway.tasks.broker import Delivery, TaskEventBroker


def status(n: int, state: v1.TaskState = v1.TaskState.WORKING) -> Delivery:
    event = v1.TaskStatusUpdateEvent(
        task_id="t", context_id="c", status=v1.TaskStatus(state=state), metadata={"n": n}
    )
    # The runner numbers events from 1; these tests number from 0, so the event number is n + 1.
    return Delivery(v1.StreamResponse(status_update=event), terminal=state.terminal, seq=n + 1)


async def collect(sub: object) -> list[int]:
    return [e.status_update.metadata["n"] async for e in sub]  # type: ignore[attr-defined,union-attr]


async def test_every_subscriber_sees_the_same_order_and_ends_at_terminal() -> None:
    broker = TaskEventBroker()
    subs = [broker.subscribe("t") for _ in range(3)]
    for n in range(5):
        broker.publish("t", status(n))
    broker.publish("t", status(5, v1.TaskState.COMPLETED))
    assert [await collect(s) for s in subs] == [[0, 1, 2, 3, 4, 5]] * 3
    assert not broker.has_subscribers("t")


async def test_closing_one_subscriber_leaves_the_others() -> None:
    broker = TaskEventBroker()
    gone, kept = broker.subscribe("t"), broker.subscribe("t")
    gone.close()
    broker.publish("t", status(1))
    broker.publish("t", status(2, v1.TaskState.FAILED))
    assert await collect(kept) == [1, 2]
    assert await collect(gone) == []


async def test_slow_reader_is_cut_off_with_an_error_and_others_continue() -> None:
    broker = TaskEventBroker(queue_size=3)
    slow, fast = broker.subscribe("t"), broker.subscribe("t")
    received: list[int] = []
    reader = aiter(fast)
    for n in range(3):
        broker.publish("t", status(n))
        received.append((await anext(reader)).status_update.metadata["n"])  # type: ignore[union-attr,index]
    broker.publish("t", status(3))  # the fourth queued event overflows the slow reader
    broker.publish("t", status(4, v1.TaskState.COMPLETED))
    with pytest.raises(Unavailable):
        await collect(slow)
    received += [e.status_update.metadata["n"] async for e in reader]  # type: ignore[union-attr,index]
    assert received == [0, 1, 2, 3, 4]


async def test_shutdown_ends_open_streams() -> None:
    broker = TaskEventBroker()
    sub = broker.subscribe("t")
    broker.publish("t", status(1))
    broker.close_all()
    assert await collect(sub) == [1]


async def test_an_event_that_comes_by_two_paths_is_delivered_once_in_order() -> None:
    # A process that takes a task over publishes its events here and reads them back from the bus.
    broker = TaskEventBroker()
    sub = broker.subscribe("t")
    for n in (0, 1, 0, 1, 2):
        broker.publish("t", status(n))
    broker.publish("t", status(3, v1.TaskState.COMPLETED))
    assert await collect(sub) == [0, 1, 2, 3]


async def test_a_subscriber_after_a_snapshot_gets_only_what_follows_it() -> None:
    broker = TaskEventBroker()
    broker.retain("t")
    for n in range(3):
        broker.publish("t", status(n))
    # Fetched elsewhere (the bus) and kept here overlap; each event comes once, none the snapshot has.
    sub = broker.subscribe("t", after=2, preload=[status(1), status(2)])
    broker.publish("t", status(3, v1.TaskState.COMPLETED))
    assert await collect(sub) == [2, 3]
