"""Two real gateway processes behind a real nginx (docs/deploy/nginx.conf), reached only through the
balancer's address (issue 15): a task sent through it is streamed by the other process, canceled through
it while a client streams it, and a stream cut by a SIGKILL of the process serving it is resumed through
it (REST with Last-Event-ID, A2A with SubscribeToTask), each event once and in order.

Which process served what is read from each process's own /metrics (JSON-RPC calls by method, open A2A
streams) or found by killing: the test talks to the processes directly only to observe them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.cluster.gateways import Cluster, Process, cluster, countdown, needs_services, rpc, sse_results
from tests.cluster.nginx import Nginx, nginx_binary, running_nginx

pytestmark = pytest.mark.slow

WAIT_S = 30.0
ALIVE_CHECK_S = (
    3.0  # a stream whose process was killed is cut at once; one that goes on for this long was not
)
_RPC_LINE = re.compile(r'^a2a_rpc_requests_total\{method="(\w+)",outcome="(\w+)"\} (\d+)$', re.MULTILINE)
_STREAMS_LINE = re.compile(r"^a2a_active_streams (\d+)$", re.MULTILINE)


@contextlib.asynccontextmanager
async def balanced(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Nginx]]:
    """Two gateway processes and the echo agent, nginx in front; logs printed when the body fails."""
    needs_services()
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (not on PATH nor in /usr/sbin); .ci/run installs nginx-light")
    async with (
        cluster(tmp_path, 2) as made,
        running_nginx(tmp_path, [g.port for g in made.gateways]) as proxy,
    ):
        try:
            yield made, proxy
        except BaseException:
            print(made.logs())
            print("--- nginx ---\n" + proxy.log_text()[-4000:])
            raise


def rpc_url(made: Cluster, proxy: Nginx) -> str:
    return f"{proxy.url}/a2a/agents/{made.agent_id}"


async def send(client: httpx.AsyncClient, made: Cluster, proxy: Nginx, n: int) -> str:
    answer = await client.post(rpc_url(made, proxy), json=rpc("SendMessage", countdown(n)), headers=made.auth)
    body = answer.json()
    assert "result" in body, body
    return str(body["result"]["task"]["id"])


async def get_task(client: httpx.AsyncClient, made: Cluster, proxy: Nginx, task_id: str) -> dict[str, Any]:
    got = await client.post(rpc_url(made, proxy), json=rpc("GetTask", {"id": task_id}), headers=made.auth)
    task: dict[str, Any] = got.json()["result"]
    return task


async def rpc_calls(client: httpx.AsyncClient, gateway: Process, method: str) -> int:
    """How many JSON-RPC calls of ``method`` this process answered (its /metrics, any outcome)."""
    text = (await client.get(f"{gateway.url}/metrics")).text
    return sum(int(n) for name, _, n in _RPC_LINE.findall(text) if name == method)


async def open_streams(client: httpx.AsyncClient, gateway: Process) -> int:
    """How many A2A streams this process has open now (its /metrics)."""
    found = _STREAMS_LINE.search((await client.get(f"{gateway.url}/metrics")).text)
    assert found is not None
    return int(found.group(1))


def countdown_texts(n: int) -> list[str]:
    return [str(i) for i in range(n, 0, -1)]


def a2a_chunks(results: list[dict[str, Any]]) -> list[str]:
    """What an A2A client holds after these events, as chunk texts: the first event's artifacts (the task
    snapshot), then each update appended to its artifact, or replacing it when ``append`` is not set."""
    held: dict[str, list[str]] = {}
    for artifact in results[0].get("task", {}).get("artifacts", []) if results else []:
        held[artifact["artifactId"]] = [p["text"] for p in artifact["parts"]]
    for result in results[1:]:
        update = result.get("artifactUpdate")
        if update is not None:
            artifact = update["artifact"]
            parts = [p["text"] for p in artifact["parts"]]
            before = held.get(artifact["artifactId"], []) if update.get("append") else []
            held[artifact["artifactId"]] = before + parts
    return [text for texts in held.values() for text in texts]


def a2a_state(result: dict[str, Any]) -> str:
    return str(result.get("statusUpdate", result.get("task", {})).get("status", {}).get("state"))


@dataclass
class Reading:
    """A stream read in the background: what arrived, and how it ended."""

    events: list[Any] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    cut: BaseException | None = None
    status: int = 0

    def add(self, event: Any) -> None:
        self.events.append(event)
        self.changed.set()

    async def until(self, predicate: Callable[[list[Any]], bool], reader: asyncio.Task[None]) -> None:
        """Wait (bounded) until ``predicate(events)`` holds; fails if the stream ends first."""
        async with asyncio.timeout(WAIT_S):
            while not predicate(self.events):
                assert not reader.done(), f"the stream ended early: {self.cut!r} {self.events[-1:]}"
                self.changed.clear()
                waiter = asyncio.create_task(self.changed.wait())
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()


async def read_a2a(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: Any, into: Reading
) -> None:
    """An A2A stream into ``into``; a cut connection is recorded, not raised."""
    try:
        async with client.stream("POST", url, json=body, headers=headers) as answer:
            into.status = answer.status_code
            async for result in sse_results(answer):
                into.add(result)
    except httpx.HTTPError as cut:
        into.cut = cut


async def read_rest(client: httpx.AsyncClient, url: str, headers: Any, into: Reading) -> None:
    """A REST task stream's (id, event, data) into ``into``; a cut connection is recorded, not raised."""
    try:
        async with client.stream("GET", url, headers=headers) as answer:
            into.status = answer.status_code
            event_id, name = "", ""
            async for line in answer.aiter_lines():
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    with contextlib.suppress(ValueError):
                        into.add((event_id, name, orjson.loads(line[5:].strip())))
    except httpx.HTTPError as cut:
        into.cut = cut


async def test_a_task_sent_through_the_balancer_is_streamed_by_the_other_process(tmp_path: Path) -> None:
    async with balanced(tmp_path) as (made, proxy), httpx.AsyncClient(timeout=WAIT_S) as client:
        task_id = await send(client, made, proxy, 20)
        sends = [await rpc_calls(client, g, "SendMessage") for g in made.gateways]
        assert sorted(sends) == [0, 1], sends
        sender = sends.index(1)
        # Subscribe through the balancer until the stream lands on the other process (round robin: at
        # once; bounded in case nginx picks the same one).
        for _attempt in range(4):
            reading = Reading()
            url, body = rpc_url(made, proxy), rpc("SubscribeToTask", {"id": task_id})
            reader = asyncio.create_task(read_a2a(client, url, body, made.auth, reading))
            await reading.until(lambda events: len(events) >= 1, reader)
            streams = [await open_streams(client, g) for g in made.gateways]
            if streams[1 - sender] == 1:
                break
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        else:
            raise AssertionError(
                "every SubscribeToTask through nginx landed on the process that got the task"
            )
        assert streams[sender] == 0, streams
        async with asyncio.timeout(WAIT_S):
            await reader
        assert reading.status == 200 and reading.cut is None, reading.cut
        results = reading.events
        assert "task" in results[0]
        assert a2a_state(results[-1]) == "TASK_STATE_COMPLETED", results[-1]
        assert a2a_chunks(results) == countdown_texts(20)
        subscribes = [await rpc_calls(client, g, "SubscribeToTask") for g in made.gateways]
        assert subscribes[1 - sender] >= 1, subscribes


async def test_a_cancel_through_the_balancer_ends_another_clients_stream_in_order(tmp_path: Path) -> None:
    async with (
        balanced(tmp_path) as (made, proxy),
        httpx.AsyncClient(timeout=WAIT_S) as watcher,
        httpx.AsyncClient(timeout=WAIT_S) as canceler,
    ):
        task_id = await send(canceler, made, proxy, 100)
        reading = Reading()
        url, body = rpc_url(made, proxy), rpc("SubscribeToTask", {"id": task_id})
        reader = asyncio.create_task(read_a2a(watcher, url, body, made.auth, reading))
        await reading.until(lambda events: len(a2a_chunks(events)) >= 5 if events else False, reader)
        canceled = await canceler.post(url, json=rpc("CancelTask", {"id": task_id}), headers=made.auth)
        assert canceled.json()["result"]["status"]["state"] == "TASK_STATE_CANCELED", canceled.text
        async with asyncio.timeout(WAIT_S):
            await reader
        assert reading.cut is None, reading.cut
        results = reading.events
        assert a2a_state(results[-1]) == "TASK_STATE_CANCELED", results[-1]
        assert [a2a_state(r) for r in results[1:-1] if "statusUpdate" in r].count("TASK_STATE_CANCELED") == 0
        texts = a2a_chunks(results)
        assert texts == countdown_texts(100)[: len(texts)] and len(texts) >= 5
        stored = await get_task(canceler, made, proxy, task_id)
        assert stored["status"]["state"] == "TASK_STATE_CANCELED"
        # What the stream showed is what the task kept: no chunk after the cancel, none lost before it.
        assert [p["text"] for a in stored.get("artifacts", []) for p in a["parts"]] == texts


def rest_texts(events: list[tuple[str, str, Any]]) -> list[str]:
    return [p["data"] for _, name, doc in events if name == "artifact" for p in doc["parts"]]


async def send_to(client: httpx.AsyncClient, made: Cluster, gateway: int, n: int) -> str:
    """A countdown sent to one process directly: the test knows which process runs (holds) it."""
    url = made.rpc_url(made.gateways[gateway])
    answer = await client.post(url, json=rpc("SendMessage", countdown(n)), headers=made.auth)
    body = answer.json()
    assert "result" in body, body
    return str(body["result"]["task"]["id"])


async def cut_the_stream(made: Cluster, reader: asyncio.Task[None], order: tuple[int, int]) -> int:
    """SIGKILL the process serving ``reader``'s stream; which one it is is found by killing: the first of
    ``order``, and if the stream goes on, that one is replaced on its port and the other is killed.
    Returns the index of the process that served it."""
    first, second = order
    made.gateways[first].kill()
    await asyncio.wait({reader}, timeout=ALIVE_CHECK_S)
    if reader.done():
        return first
    await made.restart(first)
    made.gateways[second].kill()
    await asyncio.wait({reader}, timeout=WAIT_S)
    assert reader.done(), "the stream went on although both processes were killed in turn"
    return second


def cut_upstream(proxy: Nginx, port: int) -> bool:
    """Whether nginx logged a stream of the process on ``port`` cut short."""
    return any(
        "upstream prematurely closed" in line and f"127.0.0.1:{port}/" in line
        for line in proxy.log_text().splitlines()
    )


async def resume_rest(
    client: httpx.AsyncClient, made: Cluster, proxy: Nginx, task_id: str, n: int, *, holder_killed: bool
) -> None:
    """Follow the task's REST stream through nginx, cut it by a SIGKILL of the process serving it (the
    holder's killed last, or first when ``holder_killed``), resume with Last-Event-ID through nginx:
    each chunk once and in order, then ``complete`` with the whole countdown."""
    url = f"{proxy.url}/api/v1/tasks/{task_id}/stream"
    first = Reading()
    reader = asyncio.create_task(read_rest(client, url, made.auth, first))
    await first.until(lambda events: len(rest_texts(events)) >= 3, reader)
    server = await cut_the_stream(made, reader, (0, 1) if holder_killed else (1, 0))
    assert cut_upstream(proxy, made.gateways[server].port), proxy.log_text()
    assert not any(name == "complete" for _, name, _ in first.events), first.events[-1:]
    rest = Reading()
    headers = made.auth | {"Last-Event-ID": first.events[-1][0]}
    async with asyncio.timeout(WAIT_S):
        await read_rest(client, url, headers, rest)
    assert rest.status == 200 and rest.cut is None, (rest.status, rest.cut)
    names = [name for _, name, _ in rest.events]
    assert names[-1] == "complete" and "complete" not in names[:-1], names
    ids = [event_id for event_id, _, _ in first.events + rest.events]
    assert len(ids) == len(set(ids)), ids
    texts = rest_texts(first.events) + rest_texts(rest.events)
    trail = [(i, name, [p["data"] for p in d.get("parts", [])]) for i, name, d in first.events + rest.events]
    # Each chunk once and in order, from where the first stream joined to the last one.
    assert texts == countdown_texts(n)[-len(texts) :], (server, trail)
    complete = rest.events[-1][2]
    assert complete["status"] == "completed", complete
    assert [p["data"] for a in complete["artifacts"] for p in a["parts"]] == countdown_texts(n)


async def test_a_rest_stream_cut_by_a_sigkill_resumes_through_the_balancer(tmp_path: Path) -> None:
    async with balanced(tmp_path) as (made, proxy), httpx.AsyncClient(timeout=WAIT_S) as client:
        task_id = await send_to(client, made, 0, 60)
        # nginx's round robin sends its first request to its first server, its second to the other:
        # the stream lands on process 1, the one killed first, so the task's own process 0 runs on.
        assert (await client.get(f"{proxy.url}/health/ready")).status_code == 200
        await resume_rest(client, made, proxy, task_id, 60, holder_killed=False)


async def test_a_rest_stream_repeats_no_chunk_when_the_task_is_taken_over(tmp_path: Path) -> None:
    async with balanced(tmp_path) as (made, proxy), httpx.AsyncClient(timeout=WAIT_S) as client:
        task_id = await send_to(client, made, 0, 100)
        await resume_rest(client, made, proxy, task_id, 100, holder_killed=True)


async def test_an_a2a_stream_cut_by_a_sigkill_is_resubscribed_through_the_balancer(tmp_path: Path) -> None:
    async with balanced(tmp_path) as (made, proxy), httpx.AsyncClient(timeout=WAIT_S) as client:
        task_id = await send(client, made, proxy, 60)
        url, body = rpc_url(made, proxy), rpc("SubscribeToTask", {"id": task_id})
        first = Reading()
        reader = asyncio.create_task(read_a2a(client, url, body, made.auth, first))
        await first.until(lambda events: len(a2a_chunks(events)) >= 3 if events else False, reader)
        streams = [await open_streams(client, g) for g in made.gateways]
        assert sorted(streams) == [0, 1], streams
        made.gateways[streams.index(1)].kill()
        async with asyncio.timeout(WAIT_S):
            await reader
        assert first.cut is not None or a2a_state(first.events[-1]) != "TASK_STATE_COMPLETED"
        seen = a2a_chunks(first.events)
        again = Reading()
        async with asyncio.timeout(WAIT_S):
            await read_a2a(client, url, body, made.auth, again)
        assert again.status == 200 and again.cut is None, again.cut
        now = again.events[0]
        assert "task" in now, now  # A2A's rule: the first event is the task as it is now
        snapshot = [p["text"] for a in now["task"].get("artifacts", []) for p in a["parts"]]
        assert snapshot[: len(seen)] == seen, (snapshot, seen)
        assert a2a_state(again.events[-1]) == "TASK_STATE_COMPLETED", again.events[-1]
        assert a2a_chunks(again.events) == countdown_texts(60)
