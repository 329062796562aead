"""Credits stay whole through a chaos run (issue 15): three gateway processes on one PostgreSQL and
Redis, the echo agent's countdown skill priced, a caller (not the agent's owner, so money moves) sending
priced tasks through random processes at a steady rate while one process is SIGKILLed every few seconds
and replaced. Once every task has ended: `a2a-gateway ledger check` is clean, nothing is held, each
completed task was paid once, each other one released, and the caller's balance, the owner's earnings
and the platform's fees add up to the grant.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.gateways import Cluster, User, cluster, countdown, new_user, rpc

pytestmark = pytest.mark.slow

PRICE = 20
FEE_BPS = 500  # the gateway's default platform fee (A2A_GATEWAY_PLATFORM_FEE_BPS is not set)
FEE = PRICE * FEE_BPS // 10_000
GRANT = 10_000
CHAOS_S = 24.0  # how long tasks are sent and processes killed
SEND_EVERY_S = 0.25  # steady rate: about 4 tasks a second, ~100 in all
MAX_SENDS = 120
KILL_EVERY_S = 4.0
MAX_KILLS = 8
BUSY_S = 0.4  # a process sent a task this recently still runs it
SETTLE_S = 30.0  # every task ends within this after the chaos (takeover needs the lease, 3 s, to lapse)
CALLER_SCOPES = ["agents:read", "billing:read", "tasks:read", "tasks:write"]
# The default budget (30 tasks a minute per caller) is below the run's rate; the others as by default.
RAISED_LIMITS = {
    "A2A_GATEWAY_RATE_LIMITS": '{"tasks:create": "1000/minute", "connect": "60/minute", '
    '"auth:login": "30/minute", "auth:register": "20/hour"}'
}
TERMINAL = {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"}


def unwrap(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    return body.get("data", body) if isinstance(body, dict) else body


async def price_countdown(client: httpx.AsyncClient, made: Cluster) -> None:
    """The owner prices the echo agent's countdown skill (as agents_examples/demo/network.py does)."""
    url = f"{made.gateways[0].url}/api/v1/agents/{made.agent_id}"
    agent = unwrap(await client.get(url, headers=made.auth))
    skills = [s | {"price": PRICE if s["id"] == "countdown" else 0} for s in agent["skills"]]
    assert any(s["id"] == "countdown" for s in skills), agent["skills"]
    unwrap(await client.patch(url, json={"skills": skills, "pricePerTask": 0}, headers=made.auth))


@dataclass
class Chaos:
    """What the run did: tasks whose SendMessage answered, sends that got no answer, kills."""

    sent: dict[str, int] = field(default_factory=dict)  # task id -> chunks
    lost_answers: int = 0
    refused: list[Any] = field(default_factory=list)
    kills: int = 0
    taken_over: int = 0
    last_sent: dict[int, float] = field(default_factory=dict)  # process index -> when it got a task
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)


async def send_one(
    client: httpx.AsyncClient, made: Cluster, caller: User, index: int, chaos: Chaos, n: int
) -> None:
    url = made.rpc_url(made.gateways[index])
    chaos.last_sent[index] = time.monotonic()
    try:
        answer = await client.post(url, json=rpc("SendMessage", countdown(n)), headers=caller.auth)
        body = answer.json()
    except (httpx.HTTPError, ValueError):
        chaos.lost_answers += 1  # the process died under the call: the task may or may not exist
        return
    if "result" in body:
        chaos.sent[str(body["result"]["task"]["id"])] = n
    else:
        chaos.refused.append(body.get("error"))


async def sender(
    client: httpx.AsyncClient, made: Cluster, caller: User, chaos: Chaos, rng: random.Random
) -> None:
    """A task every SEND_EVERY_S (paced from the start, not from each answer) to a random process."""
    started = time.monotonic()
    for i in range(MAX_SENDS):
        due = started + i * SEND_EVERY_S
        if due > started + CHAOS_S:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))  # pacing the load, not waiting for a state
        job = asyncio.create_task(send_one(client, made, caller, rng.randrange(3), chaos, rng.randint(5, 10)))
        chaos.in_flight.add(job)
        job.add_done_callback(chaos.in_flight.discard)
    if chaos.in_flight:
        await asyncio.gather(*chaos.in_flight)


async def killer(made: Cluster, chaos: Chaos, rng: random.Random) -> None:
    """Every KILL_EVERY_S one random process that was just sent a task (so it is running one: tasks last
    0.5-1 s) is SIGKILLed and a new one started on its port (at most one is down at a time)."""
    started = time.monotonic()
    for i in range(1, MAX_KILLS + 1):
        due = started + i * KILL_EVERY_S
        if due > started + CHAOS_S - 1:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        now = time.monotonic()
        busy = [k for k, at in sorted(chaos.last_sent.items()) if now - at < BUSY_S]
        await made.restart(rng.choice(busy or [0, 1, 2]))
        chaos.kills += 1


async def caller_tasks(client: httpx.AsyncClient, made: Cluster, caller: User) -> dict[str, str]:
    """Every task of the caller's and its state (ListTasks, all pages), through any live process."""
    states: dict[str, str] = {}
    token = ""
    for _page in range(50):
        params: dict[str, Any] = {"pageSize": 100} | ({"pageToken": token} if token else {})
        got = await client.post(
            made.rpc_url(made.gateways[0]), json=rpc("ListTasks", params), headers=caller.auth
        )
        page = got.json()["result"]
        for task in page["tasks"]:
            states[str(task["id"])] = str(task["status"]["state"])
        token = page.get("nextPageToken") or ""
        if not token:
            return states
    raise AssertionError("ListTasks never ended")


async def all_ended(client: httpx.AsyncClient, made: Cluster, caller: User) -> dict[str, str]:
    """Poll until every task of the caller is terminal (bounded by SETTLE_S)."""
    states: dict[str, str] = {}
    try:
        async with asyncio.timeout(SETTLE_S):
            while True:
                states = await caller_tasks(client, made, caller)
                if all(state in TERMINAL for state in states.values()):
                    return states
                await asyncio.sleep(0.25)
    except TimeoutError:
        waiting = {t: s for t, s in states.items() if s not in TERMINAL}
        raise AssertionError(f"tasks still in flight after {SETTLE_S} s: {waiting}") from None


async def transactions(client: httpx.AsyncClient, made: Cluster, user: User) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for offset in range(0, 100_000, 100):
        url = f"{made.gateways[0].url}/api/v1/billing/transactions?limit=100&offset={offset}"
        page = unwrap(await client.get(url, headers=user.auth))
        entries.extend(page)
        if len(page) < 100:
            return entries
    raise AssertionError("too many transactions")


async def balance(client: httpx.AsyncClient, made: Cluster, user: User) -> dict[str, Any]:
    found: dict[str, Any] = unwrap(
        await client.get(f"{made.gateways[0].url}/api/v1/billing/balance", headers=user.auth)
    )
    return found


async def test_credits_and_the_ledger_are_whole_after_processes_are_killed_under_priced_load(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, 3, RAISED_LIMITS) as made, httpx.AsyncClient(timeout=15) as client:
        try:
            await run_chaos(client, made, tmp_path)
        except BaseException:
            print(made.logs())
            raise


async def run_chaos(client: httpx.AsyncClient, made: Cluster, tmp_path: Path) -> None:
    assert made.owner is not None
    await price_countdown(client, made)
    caller = await new_user(made.gateways[0], CALLER_SCOPES)
    granted = made.cli(
        "credits", "grant", "--user", caller.email, "--amount", str(GRANT), "--reason", "chaos test"
    )
    assert granted.returncode == 0, granted.stderr + granted.stdout
    seed = secrets.randbits(32)
    print(f"chaos seed {seed}")
    rng = random.Random(seed)
    chaos = Chaos()
    started = time.monotonic()
    async with asyncio.timeout(CHAOS_S + 30):
        await asyncio.gather(sender(client, made, caller, chaos, rng), killer(made, chaos, rng))
    chaos_s = time.monotonic() - started
    states = await all_ended(client, made, caller)
    settle_s = time.monotonic() - started - chaos_s
    outcomes = Counter(states.values())
    print(
        f"chaos: {len(chaos.sent)} tasks answered, {chaos.lost_answers} sends cut, "
        f"{len(chaos.refused)} refused, {chaos.kills} kills in {chaos_s:.1f} s; "
        f"all ended {settle_s:.1f} s later: {dict(outcomes)}"
    )
    taken = sum(g.output().count("taking a task over") for g in [*made.retired, *made.gateways])
    print(f"chaos: {taken} tasks taken over from killed processes")
    assert chaos.kills >= 4 and taken >= 1, (chaos.kills, taken)
    assert not chaos.refused, chaos.refused[:3]
    assert set(chaos.sent) <= set(states), set(chaos.sent) - set(states)
    assert outcomes["TASK_STATE_COMPLETED"] >= len(states) // 2, outcomes

    paid = await kinds_by_task(client, made, caller)  # the caller's side: a hold, and its release
    earned_by = await kinds_by_task(client, made, made.owner)  # the owner's side: the payout
    # A send cut by a kill after its hold and before its task's first write leaves a hold with no task:
    # the hold sweeper releases it once it is old enough (decision 0016); until then it is pending.
    taskless = {t for t in paid if t not in states}
    print(f"chaos: {len(taskless)} holds whose task was never written")
    assert len(taskless) <= chaos.lost_answers, (taskless, chaos.lost_answers)
    assert all(paid[t] == Counter({"hold": 1}) for t in taskless), {t: paid[t] for t in taskless}

    checked = made.cli("ledger", "check")
    report = checked.stdout + checked.stderr
    print(report)
    assert checked.returncode == 0, report
    assert ": OK" in report and f"({len(taskless)} pending)" in report, report

    completed = {t for t, s in states.items() if s == "TASK_STATE_COMPLETED"}
    spent = await balance(client, made, caller)
    earned = await balance(client, made, made.owner)
    assert spent["held"] == PRICE * len(taskless) and earned["held"] == 0, (spent, earned)
    assert spent["balance"] == GRANT - PRICE * len(completed), (spent, len(completed))
    assert earned["balance"] == (PRICE - FEE) * len(completed), (earned, len(completed))
    assert spent["balance"] + earned["balance"] + FEE * len(completed) == GRANT

    for task_id, state in states.items():
        if state == "TASK_STATE_COMPLETED":
            assert paid[task_id] == Counter({"hold": 1}), (task_id, paid[task_id])
            assert earned_by[task_id] == Counter({"capture_payout": 1}), (task_id, earned_by[task_id])
        else:
            assert paid[task_id] in (Counter(), Counter({"hold": 1, "release": 1})), (task_id, paid[task_id])
            assert not earned_by[task_id], (task_id, state, earned_by[task_id])
    assert set(earned_by) <= set(states), set(earned_by) - set(states)


async def kinds_by_task(
    client: httpx.AsyncClient, made: Cluster, user: User
) -> defaultdict[str, Counter[str]]:
    """The kinds of a user's transactions, by task."""
    found: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for entry in await transactions(client, made, user):
        if entry.get("taskId"):
            found[str(entry["taskId"])][str(entry["type"])] += 1
    return found
