"""SSE streaming against a real uvicorn server: framing, ordering, fan-out, disconnects, up-front errors.

Every stream is read line by line over a real loopback socket (httpx streaming), so these tests see
exactly what a line-based SSE client sees: one single-line JSON-RPC response per ``data:`` line, and
the end of the interaction as the HTTP response closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.factories import legacy_message, rpc, send_text, user_message
from tests.streaming_helpers import (
    STREAM_TIMEOUT,
    assert_event_stream,
    payload_kind,
    read_plain_error,
    state_of,
    stream_call,
    wait_for,
    walk_keys,
)

SUBMITTED = "TASK_STATE_SUBMITTED"
WORKING = "TASK_STATE_WORKING"
COMPLETED = "TASK_STATE_COMPLETED"
INPUT_REQUIRED = "TASK_STATE_INPUT_REQUIRED"
TERMINAL = {COMPLETED, "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"}


@pytest.fixture
async def gw(live_server: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose base URL is a freshly started gateway on a real loopback port."""
    server = await live_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=STREAM_TIMEOUT) as http:
        yield http


def countdown(n: int, **extra: Any) -> dict[str, Any]:
    """SendMessageRequest params for the countdown skill (N chunks, 100 ms apart)."""
    return {"message": user_message(str(n)), "metadata": {"skillId": "countdown"}, **extra}


def ask(text: str = "hi") -> dict[str, Any]:
    """SendMessageRequest params for the ask skill (pauses in input-required)."""
    return {"message": user_message(text), "metadata": {"skillId": "ask"}}


def texts(parts: list[dict[str, Any]]) -> list[str]:
    return [part["text"] for part in parts]


def countdown_seen(results: list[dict[str, Any]]) -> list[str]:
    """The countdown chunks a subscriber knows of: those in its task snapshot plus those streamed after."""
    seen: list[str] = []
    for artifact in results[0]["task"].get("artifacts", []):
        seen += texts(artifact["parts"])
    for result in results[1:]:
        if payload_kind(result) == "artifactUpdate":
            seen += texts(result["artifactUpdate"]["artifact"]["parts"])
    return seen


def assert_no_v03_keys(results: list[Any]) -> None:
    leaked = {"kind", "final"} & set(walk_keys(results))
    assert not leaked, f"0.3-only keys in 1.0 frames: {leaked}"


async def get_task(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    body = await rpc(http, "GetTask", {"id": task_id})
    assert "result" in body, body
    task: dict[str, Any] = body["result"]
    return task


async def active_streams(http: httpx.AsyncClient) -> int:
    """The gateway's open-SSE-stream gauge, read from /metrics."""
    text = (await http.get("/metrics")).text
    match = re.search(r"^a2a_active_streams (\d+)$", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


async def _streams_are(http: httpx.AsyncClient, n: int) -> bool:
    return await active_streams(http) == n


async def start_countdown_in_background(http: httpx.AsyncClient, n: int) -> str:
    """SendMessage with returnImmediately: the countdown task id, still running."""
    body = await rpc(http, "SendMessage", countdown(n, configuration={"returnImmediately": True}))
    task = body["result"]["task"]
    assert task["status"]["state"] in (SUBMITTED, WORKING), task
    task_id: str = task["id"]
    return task_id


# --- (a) SendStreamingMessage, 1.0 -------------------------------------------------------------------


async def test_send_streaming_message_countdown_v1_framing_and_order(gw: httpx.AsyncClient) -> None:
    async with stream_call(gw, "SendStreamingMessage", countdown(3), request_id=41) as reader:
        assert_event_stream(reader)
        results = await reader.results()
    assert reader.closed, "the server must close the stream after the terminal event"
    assert all(frame.event == "message" for frame in reader.frames)

    assert [payload_kind(r) for r in results] == [
        "task",
        "statusUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "statusUpdate",
    ]
    task = results[0]["task"]
    assert task["status"]["state"] == SUBMITTED
    assert task["id"] and task["contextId"]
    assert [texts(m["parts"]) for m in task["history"]] == [["3"]]
    for result in results[1:]:
        event = result[payload_kind(result)]
        assert event["taskId"] == task["id"]
        assert event["contextId"] == task["contextId"]

    assert state_of(results[1]) == WORKING
    chunks = [r["artifactUpdate"] for r in results[2:5]]
    assert [texts(c["artifact"]["parts"]) for c in chunks] == [["3"], ["2"], ["1"]]
    assert len({c["artifact"]["artifactId"] for c in chunks}) == 1
    assert [c.get("append", False) for c in chunks] == [False, True, True]
    assert [c.get("lastChunk", False) for c in chunks] == [False, False, True]
    assert state_of(results[-1]) == COMPLETED
    assert_no_v03_keys(results)

    stored = await get_task(gw, task["id"])
    assert stored["status"]["state"] == COMPLETED
    assert [texts(a["parts"]) for a in stored["artifacts"]] == [["3", "2", "1"]]


async def test_send_streaming_message_lines_are_single_line_json(gw: httpx.AsyncClient) -> None:
    """Byte-level check: every non-blank, non-comment line is ``data: <one JSON document>``."""
    headers = {"A2A-Version": "1.0", "Accept": "text/event-stream"}
    body = {"jsonrpc": "2.0", "id": "raw", "method": "SendStreamingMessage", "params": countdown(2)}
    lines: list[str] = []
    async with asyncio.timeout(STREAM_TIMEOUT), gw.stream("POST", "/a2a", json=body, headers=headers) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.aiter_lines():
            lines.append(line)
    events = [line for line in lines if line and not line.startswith(":")]
    assert len(events) == 5, lines  # task, working, 2 chunks, completed
    for line in events:
        assert line.startswith("data: "), line
        decoded = json.loads(line.removeprefix("data: "))
        assert decoded["jsonrpc"] == "2.0" and decoded["id"] == "raw" and "result" in decoded
    # every data line is followed by a blank line (frame separator)
    for i, line in enumerate(lines):
        if line.startswith("data: "):
            assert lines[i + 1] == "", lines


# --- (b) message/stream, 0.3 ---------------------------------------------------------------------------


async def test_message_stream_countdown_v03(gw: httpx.AsyncClient) -> None:
    params = {"message": legacy_message("3"), "metadata": {"skillId": "countdown"}}
    async with stream_call(gw, "message/stream", params, version=None, request_id="legacy-1") as reader:
        assert_event_stream(reader)
        results = await reader.results()
    assert reader.closed

    assert [r["kind"] for r in results] == [
        "task",
        "status-update",
        "artifact-update",
        "artifact-update",
        "artifact-update",
        "status-update",
    ]
    task = results[0]
    assert task["status"]["state"] == "submitted"
    assert task["history"][0]["kind"] == "message" and task["history"][0]["role"] == "user"
    for result in results[1:]:
        assert result["taskId"] == task["id"] and result["contextId"] == task["contextId"]

    statuses = [r for r in results if r["kind"] == "status-update"]
    assert [s["status"]["state"] for s in statuses] == ["working", "completed"]
    assert [s["final"] for s in statuses] == [False, True]
    assert results[-1]["final"] is True

    chunks = [r for r in results if r["kind"] == "artifact-update"]
    assert [c["artifact"]["parts"] for c in chunks] == [
        [{"kind": "text", "text": "3"}],
        [{"kind": "text", "text": "2"}],
        [{"kind": "text", "text": "1"}],
    ]
    assert [c.get("append", False) for c in chunks] == [False, True, True]
    assert [c.get("lastChunk", False) for c in chunks] == [False, False, True]
    raw = json.dumps(results)
    assert "TASK_STATE_" not in raw and "ROLE_" not in raw


# --- (c) concurrent SubscribeToTask subscribers --------------------------------------------------------


async def test_two_subscribers_receive_snapshot_then_identical_ordered_events(gw: httpx.AsyncClient) -> None:
    task_id = await start_countdown_in_background(gw, 5)
    async with (
        stream_call(gw, "SubscribeToTask", {"id": task_id}, request_id=1) as first,
        stream_call(gw, "SubscribeToTask", {"id": task_id}, request_id=2) as second,
    ):
        assert_event_stream(first)
        assert_event_stream(second)
        got_first, got_second = await asyncio.gather(first.results(), second.results())
    assert first.closed and second.closed

    for results in (got_first, got_second):
        assert payload_kind(results[0]) == "task"
        assert results[0]["task"]["id"] == task_id
        assert all(payload_kind(r) in ("statusUpdate", "artifactUpdate") for r in results[1:])
        assert state_of(results[-1]) == COMPLETED
        assert all(state_of(r) not in TERMINAL for r in results[:-1])
        assert countdown_seen(results) == ["5", "4", "3", "2", "1"]
        assert_no_v03_keys(results)

    assert_same_ordered_events([got_first, got_second])


async def test_many_subscribers_fan_out(gw: httpx.AsyncClient) -> None:
    task_id = await start_countdown_in_background(gw, 4)
    async with contextlib.AsyncExitStack() as stack:
        readers = [
            await stack.enter_async_context(stream_call(gw, "SubscribeToTask", {"id": task_id}, request_id=i))
            for i in range(10)
        ]
        got = await asyncio.gather(*(reader.results() for reader in readers))
    for results in got:
        assert payload_kind(results[0]) == "task"
        assert state_of(results[-1]) == COMPLETED
        assert countdown_seen(results) == ["4", "3", "2", "1"]
    assert_same_ordered_events(list(got))
    assert await wait_for(lambda: _streams_are(gw, 0))


def assert_same_ordered_events(streams: list[list[dict[str, Any]]]) -> None:
    """Subscribers see one sequence: identical from the same snapshot, else a suffix of an earlier one."""
    earliest = max(streams, key=len)
    for results in streams:
        events = results[1:]
        if results[0] == earliest[0]:
            assert events == earliest[1:]
        else:
            # This subscriber arrived after some event: it sees the same sequence from there on.
            assert 0 < len(events) < len(earliest) - 1
            assert earliest[-len(events) :] == events


# --- (d) one subscriber disconnects --------------------------------------------------------------------


async def test_subscriber_disconnect_does_not_affect_other_subscriber_or_task(gw: httpx.AsyncClient) -> None:
    task_id = await start_countdown_in_background(gw, 6)
    async with stream_call(gw, "SubscribeToTask", {"id": task_id}, request_id="stays") as stays:
        assert_event_stream(stays)
        early = await stays.until(lambda f: True)  # the snapshot: this subscriber is registered
        async with stream_call(gw, "SubscribeToTask", {"id": task_id}, request_id="leaves") as leaves:
            assert_event_stream(leaves)
            seen = await leaves.until(lambda f: payload_kind(f.result) == "artifactUpdate")
            assert payload_kind(seen[0].result) == "task"
        # The client hung up mid-stream; the gateway notices and releases that stream only.
        assert not leaves.closed
        assert await wait_for(lambda: _streams_are(gw, 1))
        rest = await stays.results()
    results = [f.result for f in early] + rest
    assert payload_kind(results[0]) == "task"
    assert state_of(results[-1]) == COMPLETED
    assert countdown_seen(results) == ["6", "5", "4", "3", "2", "1"]

    task = await get_task(gw, task_id)
    assert task["status"]["state"] == COMPLETED
    assert [texts(a["parts"]) for a in task["artifacts"]] == [["6", "5", "4", "3", "2", "1"]]
    assert await wait_for(lambda: _streams_are(gw, 0))


async def test_originating_stream_disconnect_does_not_stop_the_task(gw: httpx.AsyncClient) -> None:
    """Hanging up on SendStreamingMessage neither cancels the task nor disturbs a subscriber."""
    async with stream_call(gw, "SendStreamingMessage", countdown(4), request_id="origin") as origin:
        assert_event_stream(origin)
        [first] = await origin.until(lambda f: True)
        task_id = first.result["task"]["id"]
        async with stream_call(gw, "SubscribeToTask", {"id": task_id}, request_id="watch") as watcher:
            await watcher.until(lambda f: True)
            await origin.until(lambda f: payload_kind(f.result) == "artifactUpdate")
            await origin.response.aclose()  # the original caller goes away mid-stream
            watched = await watcher.results()
    assert state_of(watched[-1]) == COMPLETED
    task = await get_task(gw, task_id)
    assert task["status"]["state"] == COMPLETED
    assert [texts(a["parts"]) for a in task["artifacts"]] == [["4", "3", "2", "1"]]
    assert await wait_for(lambda: _streams_are(gw, 0))


async def test_cancel_ends_every_subscriber_stream_with_canceled(gw: httpx.AsyncClient) -> None:
    task_id = await start_countdown_in_background(gw, 20)
    async with (
        stream_call(gw, "SubscribeToTask", {"id": task_id}, request_id=1) as v1_sub,
        stream_call(gw, "tasks/resubscribe", {"id": task_id}, version=None, request_id=2) as v03_sub,
    ):
        await v1_sub.until(lambda f: payload_kind(f.result) == "artifactUpdate")
        body = await rpc(gw, "CancelTask", {"id": task_id})
        assert body["result"]["status"]["state"] == "TASK_STATE_CANCELED", body
        v1_rest = await v1_sub.results()
        v03_all = await v03_sub.results()
    assert v1_sub.closed and v03_sub.closed
    assert state_of(v1_rest[-1]) == "TASK_STATE_CANCELED"
    assert v03_all[-1]["kind"] == "status-update"
    assert v03_all[-1]["status"]["state"] == "canceled" and v03_all[-1]["final"] is True
    task = await get_task(gw, task_id)
    assert task["status"]["state"] == "TASK_STATE_CANCELED"
    assert 1 <= len(task["artifacts"][0]["parts"]) < 20, "the countdown stopped when it was canceled"


async def test_resubscribe_v03_to_running_task(gw: httpx.AsyncClient) -> None:
    task_id = await start_countdown_in_background(gw, 3)
    async with stream_call(gw, "tasks/resubscribe", {"id": task_id}, version=None, request_id="r") as reader:
        assert_event_stream(reader)
        results = await reader.results()
    assert results[0]["kind"] == "task" and results[0]["id"] == task_id
    assert {r["kind"] for r in results[1:]} <= {"status-update", "artifact-update"}
    finals = [r["final"] for r in results if r["kind"] == "status-update"]
    assert finals[-1] is True and not any(finals[:-1])
    assert results[-1]["kind"] == "status-update" and results[-1]["status"]["state"] == "completed"


# --- (e) subscribing to a finished or unknown task -----------------------------------------------------


async def test_v03_resubscribe_to_a_finished_or_unknown_task_streams_the_error(gw: httpx.AsyncClient) -> None:
    done = await send_text(gw, "finished")
    for task_id, code in ((done["id"], -32004), ("no-such-task", -32001)):
        params = {"id": task_id}
        async with stream_call(gw, "tasks/resubscribe", params, version=None, request_id=7) as reader:
            assert_event_stream(reader)
            frames = await reader.rest()
        assert [f.event for f in frames] == ["error"] and frames[0].body["error"]["code"] == code


@pytest.mark.parametrize(("method", "version"), [("SubscribeToTask", "1.0")])
async def test_subscribe_to_finished_or_unknown_task_is_plain_json_error(
    gw: httpx.AsyncClient, method: str, version: str | None
) -> None:
    done = await send_text(gw, "finished")
    assert done["status"]["state"] == COMPLETED

    async with stream_call(gw, method, {"id": done["id"]}, version=version, request_id=7) as reader:
        error = await read_plain_error(reader)
    assert error["code"] == -32004, error
    if version == "1.0":
        assert error["data"][0]["reason"] == "UNSUPPORTED_OPERATION"

    async with stream_call(gw, method, {"id": "no-such-task"}, version=version, request_id="u") as reader:
        error = await read_plain_error(reader)
    assert error["code"] == -32001, error
    if version == "1.0":
        assert error["data"][0]["reason"] == "TASK_NOT_FOUND"


async def test_streaming_message_to_finished_task_is_plain_json_error(gw: httpx.AsyncClient) -> None:
    done = await send_text(gw, "finished")
    params = {"message": user_message("more", taskId=done["id"])}
    async with stream_call(gw, "SendStreamingMessage", params, request_id=8) as reader:
        error = await read_plain_error(reader)
    assert error["code"] == -32004, error


# --- (f) input-required, then a follow-up on the same task --------------------------------------------


async def test_input_required_then_streaming_follow_up_on_same_task(gw: httpx.AsyncClient) -> None:
    async with stream_call(gw, "SendStreamingMessage", ask(), request_id=1) as opening:
        assert_event_stream(opening)
        asked = await opening.results()
    assert opening.closed, "the stream closes when the task pauses in input-required"
    assert payload_kind(asked[0]) == "task" and state_of(asked[0]) == SUBMITTED
    task_id = asked[0]["task"]["id"]
    assert state_of(asked[-1]) == INPUT_REQUIRED
    assert texts(asked[-1]["statusUpdate"]["status"]["message"]["parts"]) == ["What is your name?"]
    assert all(state_of(r) == WORKING for r in asked[1:-1])
    assert_no_v03_keys(asked)

    # A subscriber that joins while the task waits for input stays open through the follow-up.
    async with stream_call(gw, "SubscribeToTask", {"id": task_id}, request_id="watch") as watcher:
        assert_event_stream(watcher)
        snapshot = await watcher.until(lambda f: True)
        assert state_of(snapshot[0].result) == INPUT_REQUIRED
        assert snapshot[0].result["task"]["id"] == task_id

        follow_up_message = user_message("Ada", taskId=task_id)
        params = {"message": follow_up_message}
        async with stream_call(gw, "SendStreamingMessage", params, request_id=2) as follow:
            assert_event_stream(follow)
            answered = await follow.results()
        assert follow.closed
        watched = await watcher.results()
    assert watcher.closed

    assert [payload_kind(r) for r in answered] == ["task", "statusUpdate", "artifactUpdate", "statusUpdate"]
    assert answered[0]["task"]["id"] == task_id
    assert follow_up_message["messageId"] in [m["messageId"] for m in answered[0]["task"]["history"]]
    assert state_of(answered[1]) == WORKING
    greeting = answered[2]["artifactUpdate"]
    assert greeting["taskId"] == task_id
    assert texts(greeting["artifact"]["parts"]) == ["Hello, Ada!"]
    assert state_of(answered[3]) == COMPLETED
    assert all(r[payload_kind(r)].get("taskId", task_id) == task_id for r in answered)
    assert_no_v03_keys(answered)

    # The watcher saw the very same events after its snapshot, ending at COMPLETED.
    assert watched == answered[1:]

    task = await get_task(gw, task_id)
    assert task["status"]["state"] == COMPLETED
    assert [texts(a["parts"]) for a in task["artifacts"]] == [["Hello, Ada!"]]
    user_ids = [m["messageId"] for m in task["history"] if m["role"] == "ROLE_USER"]
    assert user_ids == [asked[0]["task"]["history"][0]["messageId"], follow_up_message["messageId"]]


async def test_input_required_and_follow_up_v03(gw: httpx.AsyncClient) -> None:
    params = {"message": legacy_message("hi"), "metadata": {"skillId": "ask"}}
    async with stream_call(gw, "message/stream", params, version=None, request_id="q") as opening:
        asked = await opening.results()
    assert opening.closed
    task_id = asked[0]["id"]
    assert asked[0]["kind"] == "task"
    last = asked[-1]
    assert last["kind"] == "status-update" and last["status"]["state"] == "input-required"
    assert last["final"] is True, "the last event of a closing 0.3 stream carries final: true"

    follow = {"message": legacy_message("Bob", taskId=task_id)}
    async with (
        stream_call(gw, "tasks/resubscribe", {"id": task_id}, version=None, request_id="w") as watcher,
        stream_call(gw, "message/stream", follow, version=None, request_id="a") as answer,
    ):
        answered = await answer.results()
        watched = await watcher.results()
    assert [r["kind"] for r in answered] == ["task", "status-update", "artifact-update", "status-update"]
    assert answered[0]["id"] == task_id
    assert [r["final"] for r in answered if r["kind"] == "status-update"] == [False, True]
    assert answered[2]["artifact"]["parts"] == [{"kind": "text", "text": "Hello, Bob!"}]
    assert answered[-1]["status"]["state"] == "completed"
    assert watched[0]["kind"] == "task" and watched[0]["status"]["state"] == "input-required"
    assert watched[1:] == answered[1:]


# --- (g) errors before the stream starts ----------------------------------------------------------------

PRE_STREAM_ERRORS = [
    pytest.param("SendStreamingMessage", "1.0", {}, -32602, id="v1-missing-message"),
    pytest.param(
        "SendStreamingMessage",
        "1.0",
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": "nope"}},
        -32602,
        id="v1-bad-parts",
    ),
    pytest.param(
        "SendStreamingMessage",
        "1.0",
        {"message": user_message("x", taskId="no-such-task")},
        -32001,
        id="v1-unknown-task",
    ),
    pytest.param("SubscribeToTask", "1.0", {}, -32602, id="v1-subscribe-missing-id"),
    pytest.param(
        "SendStreamingMessage", None, {"message": user_message("x")}, -32009, id="v1-method-without-header"
    ),
    pytest.param("SendStreamingMessage", "99.0", {"message": user_message("x")}, -32009, id="v1-bad-version"),
    pytest.param("message/stream", None, {}, -32602, id="v03-missing-message"),
    pytest.param(
        "message/stream",
        None,
        {"message": legacy_message("x", taskId="no-such-task")},
        -32001,
        id="v03-unknown-task",
    ),
    pytest.param("tasks/resubscribe", None, {}, -32602, id="v03-resubscribe-missing-id"),
]


@pytest.mark.parametrize(("method", "version", "params", "code"), PRE_STREAM_ERRORS)
async def test_errors_before_the_stream_are_plain_json(
    gw: httpx.AsyncClient, method: str, version: str | None, params: dict[str, Any], code: int
) -> None:
    async with stream_call(gw, method, params, version=version, request_id=99) as reader:
        error = await read_plain_error(reader)
    assert error["code"] == code, error
