"""The mirror's de-duplication of upstream statuses: a pause the caller answered and the agent asks again is
a new pause, even when it looks like the last one (no status message, or the same message id); the same
pause seen twice before any reply is relayed once, and a snapshot that still shows the answered pause is
not taken for a new question while the upstream goes on."""

from __future__ import annotations

import pytest

from a2a_gateway.agent import AgentEvent, InputRequired, Status
from a2a_gateway.protocol import v1
from a2a_gateway.routing.mirror import Mirror

ASKING, WORKING = v1.TaskState.INPUT_REQUIRED, v1.TaskState.WORKING
QUESTIONS = {
    "no status message": (None, None),
    "a fresh message id each time": ("q1", "q2"),
    "the same message id each time": ("q", "q"),
}
LOOK_ALIKE = {k: v for k, v in QUESTIONS.items() if v[0] == v[1]}


def paused(message_id: str | None, said: str = "Which one?") -> v1.TaskStatus:
    message = None
    if message_id is not None:
        message = v1.Message(message_id=message_id, role=v1.Role.AGENT, parts=[v1.Part(text=said)])
    return v1.TaskStatus(state=ASKING, message=message)


def as_task(status: v1.TaskStatus) -> v1.Task:
    return v1.Task(id="up-1", context_id="up-ctx", status=status)


def pauses(events: list[AgentEvent]) -> int:
    return sum(isinstance(e, InputRequired) for e in events)


def relay(mirror: Mirror, status: v1.TaskStatus, *, snapshot: bool) -> list[AgentEvent]:
    """The status as the upstream sent it: in a task snapshot, or as a status update."""
    return mirror.snapshot(as_task(status)) if snapshot else mirror.status(status, snapshot=False)


def answered(first: str | None) -> Mirror:
    """A mirror that passed on a pause the caller has answered since."""
    mirror = Mirror()
    assert pauses(relay(mirror, paused(first), snapshot=False)) == 1
    mirror.replied()
    return mirror


@pytest.mark.parametrize("ids", QUESTIONS.values(), ids=QUESTIONS.keys())
def test_a_status_update_asking_again_after_a_reply_is_a_new_pause(
    ids: tuple[str | None, str | None],
) -> None:
    first, second = ids
    mirror = answered(first)
    asked_again = mirror.status(paused(second, "And which colour?"), snapshot=False)
    assert pauses(asked_again) == 1
    expected = "And which colour?" if second is not None else "Input required"
    assert isinstance(asked_again[0], InputRequired) and asked_again[0].text == expected


def test_a_snapshot_with_a_new_question_after_a_reply_is_a_new_pause() -> None:
    mirror = answered("q1")
    asked_again = mirror.snapshot(as_task(paused("q2", "And which colour?")))
    assert [e.text for e in asked_again if isinstance(e, InputRequired)] == ["And which colour?"]


@pytest.mark.parametrize("ids", LOOK_ALIKE.values(), ids=LOOK_ALIKE.keys())
def test_a_snapshot_like_the_answered_pause_is_a_new_pause_only_if_the_upstream_says_no_more(
    ids: tuple[str | None, str | None],
) -> None:
    first, second = ids
    # The upstream's stream ends there: the agent asked again.
    mirror = answered(first)
    assert mirror.snapshot(as_task(paused(second))) == []
    still = mirror.still_paused()
    assert isinstance(still, InputRequired)
    assert still.text == ("Which one?" if second is not None else "Input required")
    assert mirror.still_paused() is None  # passed on now: once
    # The stream goes on: the snapshot was the task as the reply found it, and the agent is working.
    mirror = answered(first)
    assert mirror.snapshot(as_task(paused(second))) == []
    assert mirror.status(v1.TaskStatus(state=WORKING), snapshot=False) == [Status(WORKING, None)]
    assert mirror.still_paused() is None


@pytest.mark.parametrize("ids", QUESTIONS.values(), ids=QUESTIONS.keys())
@pytest.mark.parametrize("snapshot", [True, False], ids=["snapshots", "status updates"])
def test_the_same_pause_seen_twice_before_a_reply_is_relayed_once(
    ids: tuple[str | None, str | None], snapshot: bool
) -> None:
    mirror = Mirror()
    first, _ = ids
    assert pauses(relay(mirror, paused(first), snapshot=snapshot)) == 1
    # Delivered again, or a later snapshot repeating it: the caller has not answered the first yet.
    assert relay(mirror, paused(first), snapshot=snapshot) == []
    assert mirror.still_paused() is None


def test_a_pause_that_comes_back_after_the_agent_worked_again_is_relayed() -> None:
    # No reply in between, but the agent left the pause on its own: asking again is news.
    mirror = Mirror()
    assert pauses(mirror.status(paused(None), snapshot=False)) == 1
    mirror.status(v1.TaskStatus(state=WORKING), snapshot=False)
    assert pauses(mirror.status(paused(None), snapshot=False)) == 1


def test_a_snapshot_repeating_a_working_status_is_relayed_once() -> None:
    mirror = answered(None)
    working = as_task(v1.TaskStatus(state=WORKING))
    assert mirror.snapshot(working) == [Status(WORKING, None)]
    assert mirror.snapshot(working) == []
    assert mirror.still_paused() is None
