"""A Hypothesis state machine over the whole gateway: the money of paid calls as its users see it.

One gateway app (in process, httpx ASGI transport) with a priced agent and three users: the agent's owner
and two buyers (new ones for every example). The rules buy credits (checkout, then a signed webhook from
a fake Stripe: duplicate and concurrent deliveries, replays of one event, a second event for one session,
a forged one), grant promotional credits, call the agent on JSON-RPC ``SendMessage`` (completes, fails,
asks for input) and on REST ``POST /api/v1/tasks`` under an ``Idempotency-Key`` (also a task that keeps
working), repeat a ``messageId`` and a key (same body: the first answer; another body: 422; another
user: a task of their own), answer a task waiting for input, and cancel. A plain-Python model says what
every balance must be; after every step ``GET /api/v1/billing/balance`` must equal it for each user and
the ledger check (the one ``a2a-gateway ledger check`` runs) must find nothing. SQLite always;
PostgreSQL when A2A_GATEWAY_TEST_POSTGRES_URL is set (the ``database_url`` fixture makes and drops a
database per run).

The app serves the test's event loop while Hypothesis runs in a worker thread; each step hands its
requests to that loop and waits for their answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from starlette.types import Receive, Scope, Send

from a2a_gateway.app import create_gateway_app
from a2a_gateway.auth import passwords
from a2a_gateway.billing.service import BillingService
from a2a_gateway.tasks.service import TaskService
from tests.api.test_registry import user
from tests.auth.identity_fakes import cheap_hasher
from tests.conftest import make_settings
from tests.factories import envelope, host_of, user_message
from tests.stripe_fake import API_BASE, SECRET_KEY, WEBHOOK_SECRET, FakeStripe, signed_headers

T = TypeVar("T")
AGENT_HOST = "priced.test"
STRIPE_HOST = "stripe.test"
PRICE = 37  # the platform's 5% is 1 credit (37 * 500 // 10000): the owner earns 36
FEE = PRICE * 500 // 10_000
PACKAGES = {"starter": 1000, "pro": 5000}
OWNER, ALICE, BOB = 0, 1, 2
USERS = (OWNER, ALICE, BOB)
RUNS = itertools.count()
STEP_TIMEOUT = 30.0

# What the agent does with a message, by its text.
COMPLETES, FAILS, ASKS, WORKS = "complete", "fail", "ask", "work"
UPSTREAM_STATE = {FAILS: "TASK_STATE_FAILED", ASKS: "TASK_STATE_INPUT_REQUIRED"}
ENDED = {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"}
STATE_OF = {
    COMPLETES: "TASK_STATE_COMPLETED",
    FAILS: "TASK_STATE_FAILED",
    ASKS: "TASK_STATE_INPUT_REQUIRED",
    WORKS: "TASK_STATE_WORKING",
}
OUTCOMES = (COMPLETES, FAILS, ASKS, WORKS)
NO_WORK = (COMPLETES, FAILS, ASKS)  # a blocking send of work that never ends would never answer
SAME, OTHER_BODY, OTHER_USER = "same", "other body", "other user"
CHANGES = (SAME, OTHER_BODY, OTHER_USER)
MOSTLY = st.sampled_from([True, True, True, False])
REST_STATUS = {
    "TASK_STATE_COMPLETED": "completed",
    "TASK_STATE_FAILED": "failed",
    "TASK_STATE_INPUT_REQUIRED": "input_required",
    "TASK_STATE_CANCELED": "cancelled",
}

CARD = {
    "name": "Priced",
    "description": "Answers for a price",
    "supportedInterfaces": [
        {"url": f"http://{AGENT_HOST}/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ],
    "version": "1.0.0",
    "capabilities": {"streaming": False},
    "defaultInputModes": ["text/plain"],
    "defaultOutputModes": ["text/plain"],
    "skills": [{"id": "answer", "name": "Answer", "description": "Answers", "tags": ["answer"]}],
}


@dataclass
class PricedAgent:
    """The upstream agent: a message's text says whether its task completes, fails, asks for input or
    keeps working (until the gateway gives up on the call); counts the tasks it was asked to start."""

    starts: int = 0
    never: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        if scope["method"] == "GET":
            await _answer(send, CARD)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        params = request.get("params", {})
        sent = params.get("message")
        if sent is None:  # CancelTask or GetTask: the gateway does not depend on the answer
            task = {"id": params.get("id", "?"), "contextId": "c", "status": {"state": "TASK_STATE_CANCELED"}}
        else:
            text = sent.get("parts", [{}])[0].get("text", "")
            task_id = sent.get("taskId")
            if task_id is None:
                self.starts += 1
                task_id = f"up-{self.starts}"
            if text == WORKS:
                await self.never.wait()  # ends when the gateway cancels the call
            status: dict[str, Any] = {"state": UPSTREAM_STATE.get(text, "TASK_STATE_COMPLETED")}
            if text == ASKS:
                # A fresh message with each question, as kit agents send (a bare status asking again
                # pauses the relayed task again too: tests/routing/test_mirror.py).
                status["message"] = {
                    "messageId": uuid.uuid4().hex,
                    "role": "ROLE_AGENT",
                    "parts": [{"text": "Anything else?"}],
                }
            task = {"id": task_id, "contextId": "c", "status": status}
        await _answer(send, {"jsonrpc": "2.0", "id": request.get("id"), "result": {"task": task}})


async def _answer(send: Send, doc: dict[str, Any]) -> None:
    raw = orjson.dumps(doc)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class Outbound(httpx.AsyncBaseTransport):
    """The gateway's outbound calls: to the fake Stripe or to the agent, both in process."""

    def __init__(self, stripe: FakeStripe, agent: PricedAgent) -> None:
        self._to = {
            STRIPE_HOST: httpx.ASGITransport(app=stripe.app),
            AGENT_HOST: httpx.ASGITransport(app=agent),
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._to[host_of(request)].handle_async_request(request)


async def resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"] if host in (AGENT_HOST, STRIPE_HOST) else []


@dataclass
class Gateway:
    gw: httpx.AsyncClient
    stripe: FakeStripe
    agent: PricedAgent
    billing: BillingService
    tasks: TaskService
    agent_id: str
    owner: dict[str, str]  # the agent owner's credentials
    owner_id: str

    async def new_user(self, email: str) -> tuple[dict[str, str], str]:
        """A user registered and logged in: its credentials and its id."""
        headers = await user(self.gw, email)
        me = await self.gw.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        return headers, me.json()["data"]["id"]


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, database_url: str) -> AsyncIterator[Gateway]:
    stripe, agent = FakeStripe(), PricedAgent()
    limits = {  # the limiter runs, with budgets no example reaches (the defaults would answer 429)
        "tasks:create": "100000/minute",
        "billing:checkout": "100000/minute",
        "auth:login": "100000/minute",
        "auth:register": "100000/hour",
    }
    app = create_gateway_app(
        make_settings(
            tmp_path,
            database_url=database_url,
            outbound_allowlist=[],
            rate_limits=limits,
            stripe_secret_key=SECRET_KEY,
            stripe_webhook_secret=WEBHOOK_SECRET,
            stripe_api_base=API_BASE,
        ),
        outbound_transport=Outbound(stripe, agent),
        resolver=resolver,
        auto_migrate=True,
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as gw,
    ):
        opened = Gateway(gw, stripe, agent, app.state.billing, app.state.service, "", {}, "")
        opened.owner, opened.owner_id = await opened.new_user("owner@example.com")
        listing = {"cardUrl": f"http://{AGENT_HOST}", "pricePerTask": PRICE}
        created = await gw.post("/api/v1/agents", json=listing, headers=opened.owner)
        assert created.status_code == 201, created.text
        opened.agent_id = created.json()["data"]["id"]
        yield opened


# --- the model ------------------------------------------------------------------------------------------


@dataclass
class Account:
    """What a user's credits must be."""

    wallet: int = 0  # posted purchased and earned credits
    promo: int = 0  # posted promotional credits
    purchased: int = 0
    earned: int = 0
    spent: int = 0


@dataclass
class Held:
    promo: int
    purchased: int
    pending: bool = True


@dataclass
class Task:
    user: int
    state: str
    hold: Held | None


@dataclass(frozen=True)
class Sent:
    """A first send (its messageId) or create (its Idempotency-Key), for the rules that repeat it."""

    who: int
    ref: str
    outcome: str


def _other(outcome: str, step: int, choices: tuple[str, ...]) -> str:
    return choices[(choices.index(outcome) + step) % len(choices)]


@dataclass
class Keyed:
    """The first answer to a REST create under one key."""

    outcome: str
    status: int
    text: str


@dataclass
class Model:
    accounts: dict[int, Account]
    tasks: dict[str, Task] = field(default_factory=dict)

    def held(self, user: int) -> tuple[int, int]:
        holds = [t.hold for t in self.tasks.values() if t.user == user and t.hold and t.hold.pending]
        return sum(h.promo for h in holds), sum(h.purchased for h in holds)

    def available(self, user: int) -> int:
        a = self.accounts[user]
        return a.wallet + a.promo - sum(self.held(user))

    def start(self, user: int, task_id: str, state: str) -> None:
        """A new task of ``user``: its price held (unless the agent is the user's own), then its state."""
        hold = None
        if user != OWNER:
            promo = min(PRICE, self.accounts[user].promo - self.held(user)[0])
            hold = Held(promo, PRICE - promo)
        self.tasks[task_id] = Task(user, "TASK_STATE_SUBMITTED", hold)
        self.move(task_id, state)

    def move(self, task_id: str, state: str) -> None:
        """The task's new state; an end settles its hold (captured on completion, else released)."""
        task = self.tasks[task_id]
        task.state = state
        hold = task.hold
        if state not in ENDED or hold is None or not hold.pending:
            return
        hold.pending = False
        if state == "TASK_STATE_COMPLETED":
            payer, owner = self.accounts[task.user], self.accounts[OWNER]
            payer.promo -= hold.promo
            payer.wallet -= hold.purchased
            payer.spent += PRICE
            owner.wallet += PRICE - FEE
            owner.earned += PRICE - FEE

    def open(self) -> list[str]:
        return [t for t, task in self.tasks.items() if task.state not in ENDED]


def balance_of(view: dict[str, Any]) -> Account:
    """The account a balance view implies, at the start of an example: nothing is held (the owner never
    pays for a call, and the buyers are new)."""
    assert view["held"] == 0, view
    return Account(
        wallet=view["balance"] - view["promo"],
        promo=view["promo"],
        purchased=view["total_purchased"],
        earned=view["total_earned"],
        spent=view["total_spent"],
    )


# --- the machine ----------------------------------------------------------------------------------------


class GatewayMachine(RuleBasedStateMachine):
    """Every example runs on the same gateway, agent and owner (whose earnings grow from example to
    example), with two buyers of its own and its own message ids, keys and sessions; the ledger the
    checks cover grows with the examples."""

    call: Callable[[Coroutine[Any, Any, Any]], Any]
    g: Gateway
    sessions = Bundle("sessions")
    messages = Bundle("messages")
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"r{next(RUNS)}-{uuid.uuid4().hex[:6]}-"
        self.ids = itertools.count()
        # Buyers of its own, so every example (and every replay of one) starts from the same balances.
        buyers = [self.call(self.g.new_user(f"{self.prefix}{name}@example.com")) for name in ("alice", "bob")]
        self.headers = [self.g.owner, *(h for h, _ in buyers)]
        self.user_ids = [self.g.owner_id, *(i for _, i in buyers)]
        views = self.call(self.balance_views())
        self.model = Model({u: balance_of(v) for u, v in zip(USERS, views, strict=True)})
        self.sent: dict[tuple[int, str], str] = {}  # (user, messageId) -> the task it made
        self.keyed: dict[tuple[int, str], Keyed] = {}  # (user, Idempotency-Key) -> the first answer
        self.session_body: dict[str, bytes] = {}  # session -> the event that credited it
        # What the check found before this example (nothing, unless an earlier example failed): a
        # replay while Hypothesis shrinks a failure is judged by what it does itself.
        found = self.call(self.g.billing.check()).findings
        self.found_before = {(f.invariant, f.subject) for f in found}

    def new_id(self, kind: str) -> str:
        return f"{self.prefix}{kind}{next(self.ids)}"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        result: T = self.call(coro)
        return result

    async def balance_views(self) -> list[dict[str, Any]]:
        """GET /api/v1/billing/balance of every user."""
        answers = await asyncio.gather(
            *(self.g.gw.get("/api/v1/billing/balance", headers=headers) for headers in self.headers)
        )
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        return [a.json()["data"] for a in answers]

    # --- buying credits ----------------------------------------------------------------------------

    async def deliver(self, body: bytes, secret: str = WEBHOOK_SECRET) -> httpx.Response:
        headers = signed_headers(body, int(time.time()), secret=secret)
        return await self.g.gw.post("/api/v1/billing/webhook", content=body, headers=headers)

    @rule(
        target=sessions,
        who=st.sampled_from(USERS),
        package=st.sampled_from(sorted(PACKAGES)),
        paid_later=st.booleans(),
        at_once=st.integers(1, 3),
    )
    def buy(self, who: int, package: str, paid_later: bool, at_once: int) -> str:
        """Checkout (retried under its key), then the webhook: maybe first while unpaid (credits nothing)
        and then async_payment_succeeded; a forged copy first; ``at_once`` deliveries racing."""
        key = {**self.headers[who], "Idempotency-Key": self.new_id("order")}

        async def scenario() -> tuple[str, bytes, list[bool]]:
            first = await self.g.gw.post("/api/v1/billing/checkout", json={"packageId": package}, headers=key)
            again = await self.g.gw.post("/api/v1/billing/checkout", json={"packageId": package}, headers=key)
            assert first.status_code == again.status_code == 200, (first.text, again.text)
            session: str = first.json()["data"]["sessionId"]
            assert again.json()["data"]["sessionId"] == session
            kind = "checkout.session.completed"
            if paid_later:
                unpaid = await self.deliver(self.g.stripe.event(session, kind))
                assert unpaid.status_code == 200 and unpaid.json()["data"]["credited"] is False, unpaid.text
                kind = "checkout.session.async_payment_succeeded"
            self.g.stripe.pay(session)
            body = self.g.stripe.event(session, kind)
            forged = await self.deliver(body, secret="whsec_someone_else")
            assert forged.status_code == 400, forged.text
            answers = await asyncio.gather(*(self.deliver(body) for _ in range(at_once)))
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            return session, body, [a.json()["data"]["credited"] for a in answers]

        session, body, credited = self.run(scenario())
        assert sorted(credited) == [False] * (at_once - 1) + [True]  # one of the racing deliveries
        account = self.model.accounts[who]
        account.wallet += PACKAGES[package]
        account.purchased += PACKAGES[package]
        self.session_body[session] = body
        return session

    @rule(session=sessions, kind=st.sampled_from(["replay", "completed", "async_payment_succeeded"]))
    def deliver_again(self, session: str, kind: str) -> None:
        """The same event redelivered, or another event for the session: nothing more is credited."""
        if kind == "replay":
            body = self.session_body[session]
        else:
            body = self.g.stripe.event(session, f"checkout.session.{kind}")
        answer = self.run(self.deliver(body))
        assert answer.status_code == 200 and answer.json()["data"]["credited"] is False, answer.text

    @rule(who=st.sampled_from(USERS), amount=st.integers(1, 60))
    def grant(self, who: int, amount: int) -> None:
        """Promotional credits (as ``a2a-gateway credits grant`` gives them), asked for twice."""
        reference, user_id = self.new_id("grant"), self.user_ids[who]
        assert self.run(self.g.billing.grant(user_id, amount, "promo", reference=reference))
        assert not self.run(self.g.billing.grant(user_id, amount, "promo", reference=reference))
        self.model.accounts[who].promo += amount

    # --- JSON-RPC calls ----------------------------------------------------------------------------

    async def rpc(self, who: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = await self.g.gw.post(
            "/a2a", json=envelope(method, params), headers={"A2A-Version": "1.0", **self.headers[who]}
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def send(self, who: int, message_id: str, outcome: str) -> None:
        """SendMessage that starts a task (blocking: answered once it ends or pauses)."""
        starts = self.g.agent.starts
        params = {
            "message": user_message(outcome, messageId=message_id),
            "metadata": {"agentId": self.g.agent_id},
        }
        answer = self.run(self.rpc(who, "SendMessage", params))
        known = self.sent.get((who, message_id))
        if known is not None:  # a retry: the first send's task as it is now, the agent not called again
            task = answer["result"]["task"]
            assert (task["id"], task["status"]["state"]) == (known, self.model.tasks[known].state), answer
            assert self.g.agent.starts == starts
            event("send: a retry answered with its task")
            return
        if who != OWNER and self.model.available(who) < PRICE:
            event("send: refused, INSUFFICIENT_CREDITS")
            error = answer["error"]
            assert error["code"] == -32070, answer
            available = str(self.model.available(who))
            assert error["data"][0]["metadata"] == {"price": str(PRICE), "available": available}
            assert self.g.agent.starts == starts  # nothing sent, no task: a retry runs anew
            return
        task = answer["result"]["task"]
        assert task["status"]["state"] == STATE_OF[outcome], answer
        assert self.g.agent.starts == starts + 1
        self.model.start(who, task["id"], STATE_OF[outcome])
        self.sent[(who, message_id)] = task["id"]
        event(f"send: {'free' if who == OWNER else 'paid'} task that ends {outcome}")

    @rule(target=messages, who=st.sampled_from(USERS), outcome=st.sampled_from([COMPLETES, FAILS, ASKS]))
    def send_message(self, who: int, outcome: str) -> Sent:
        message_id = self.new_id("msg")
        self.send(who, message_id, outcome)
        return Sent(who, message_id, outcome)

    @rule(first=messages, change=st.sampled_from(CHANGES), other=st.sampled_from([1, 2]))
    def send_again(self, first: Sent, change: str, other: int) -> None:
        """The same messageId again: by its sender, the first task (whatever the text says now); by
        another user, a task of its own; after a refusal, a send of its own."""
        who = (first.who + other) % len(USERS) if change == OTHER_USER else first.who
        outcome = _other(first.outcome, other, NO_WORK) if change == OTHER_BODY else first.outcome
        self.send(who, first.ref, outcome)

    # --- REST creates under an Idempotency-Key ------------------------------------------------------

    async def settled(self, who: int, task_id: str, state: str) -> None:
        """Wait until a REST task (answered at once) has reached ``state`` and, at an end, its last write
        (the one that settles its hold) has committed: it is no longer live."""
        async with asyncio.timeout(STEP_TIMEOUT):
            while True:
                got = await self.g.gw.get(f"/api/v1/tasks/{task_id}", headers=self.headers[who])
                status = got.json()["data"]["status"]
                if status == REST_STATUS[state] and not (state in ENDED and self.g.tasks.is_live(task_id)):
                    return
                assert status in ("assigned", "running", REST_STATUS[state]), got.text
                await asyncio.sleep(0.002)  # polls a condition (bounded above), never waits for a time

    def post_task(self, who: int, key: str, outcome: str) -> None:
        body = orjson.dumps({"assignedAgentId": self.g.agent_id, "description": outcome})
        headers = {**self.headers[who], "Idempotency-Key": key, "Content-Type": "application/json"}
        starts = self.g.agent.starts
        answer = self.run(self.g.gw.post("/api/v1/tasks", content=body, headers=headers))
        first = self.keyed.get((who, key))
        if first is not None:
            if first.outcome == outcome:  # the first answer again, errors included; nothing runs
                assert (answer.status_code, answer.text) == (first.status, first.text)
                assert answer.headers.get("Idempotent-Replayed") == "true"
                event(f"create: replayed {first.status}")
            else:
                event("create: key reused, 422")
                assert answer.status_code == 422, answer.text
                assert answer.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
            assert self.g.agent.starts == starts
            return
        self.keyed[(who, key)] = Keyed(outcome, answer.status_code, answer.text)
        if who != OWNER and self.model.available(who) < PRICE:
            event("create: refused, 402")
            assert answer.status_code == 402, answer.text
            assert answer.json()["error"]["code"] == "INSUFFICIENT_CREDITS"
            return
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["data"]["id"]
        self.model.start(who, task_id, STATE_OF[outcome])
        event(f"create: {'free' if who == OWNER else 'paid'} task that ends {outcome}")
        if outcome != WORKS:
            self.run(self.settled(who, task_id, STATE_OF[outcome]))

    @rule(target=keys, who=st.sampled_from(USERS), outcome=st.sampled_from(OUTCOMES))
    def create_task(self, who: int, outcome: str) -> Sent:
        key = self.new_id("key")
        self.post_task(who, key, outcome)
        return Sent(who, key, outcome)

    @rule(first=keys, change=st.sampled_from(CHANGES), other=st.sampled_from([1, 2]))
    def create_again(self, first: Sent, change: str, other: int) -> None:
        """The key again: by its user, the stored answer (same body) or 422 (another body); by another
        user, a create of its own."""
        who = (first.who + other) % len(USERS) if change == OTHER_USER else first.who
        outcome = _other(first.outcome, other, OUTCOMES) if change == OTHER_BODY else first.outcome
        self.post_task(who, first.ref, outcome)

    # --- what follows a task's start ---------------------------------------------------------------

    def pick(self, data: st.DataObject, open_one: bool, mine: bool, other: int) -> tuple[str, int]:
        """A task (an open one when asked and there is one) and who acts on it (its user when ``mine``)."""
        pool = (open_one and self.model.open()) or list(self.model.tasks)
        task_id = data.draw(st.sampled_from(pool), label="task")
        user = self.model.tasks[task_id].user
        return task_id, user if mine else (user + other) % len(USERS)

    @precondition(lambda self: self.model.tasks)
    @rule(
        data=st.data(),
        open_one=MOSTLY,
        mine=MOSTLY,
        other=st.sampled_from([1, 2]),
        outcome=st.sampled_from(NO_WORK),
    )
    def reply(self, data: st.DataObject, open_one: bool, mine: bool, other: int, outcome: str) -> None:
        """A follow-up message: continues a task waiting for input (the agent decides what comes next)."""
        task_id, who = self.pick(data, open_one, mine, other)
        task = self.model.tasks[task_id]
        message = user_message(outcome, taskId=task_id)
        answer = self.run(self.rpc(who, "SendMessage", {"message": message}))
        if who != task.user:
            assert answer["error"]["code"] == -32001, answer  # not found: not theirs
        elif task.state != "TASK_STATE_INPUT_REQUIRED":
            assert answer["error"]["code"] == -32004, answer  # ended, or working and not asking
        else:
            assert answer["result"]["task"]["status"]["state"] == STATE_OF[outcome], answer
            self.model.move(task_id, STATE_OF[outcome])
            event(f"reply: continued, {outcome}")

    @precondition(lambda self: self.model.tasks)
    @rule(
        data=st.data(),
        open_one=MOSTLY,
        mine=MOSTLY,
        other=st.sampled_from([1, 2]),
        rest=st.booleans(),
    )
    def cancel(self, data: st.DataObject, open_one: bool, mine: bool, other: int, rest: bool) -> None:
        """CancelTask or POST /api/v1/tasks/{id}/cancel: an open task ends canceled and its price comes
        back; an ended one cannot be canceled; another user's is not found."""
        task_id, who = self.pick(data, open_one, mine, other)
        task = self.model.tasks[task_id]
        expected = "canceled"
        if who != task.user:
            expected = "TASK_NOT_FOUND"
        elif task.state in ENDED:
            expected = "TASK_NOT_CANCELABLE"
        if rest:
            path = f"/api/v1/tasks/{task_id}/cancel"
            got = self.run(self.g.gw.post(path, headers=self.headers[who])).json()
            canceled = got.get("data", {}).get("status") == "cancelled"
            said = "canceled" if canceled else got["error"]["code"]
        else:
            got = self.run(self.rpc(who, "CancelTask", {"id": task_id}))
            canceled = got.get("result", {}).get("status", {}).get("state") == "TASK_STATE_CANCELED"
            said = "canceled" if canceled else got["error"]["data"][0]["reason"]
        assert said == expected, got
        event(f"cancel: {expected}")
        if canceled:
            self.model.move(task_id, "TASK_STATE_CANCELED")

    # --- after every step --------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model(self) -> None:
        views = self.run(self.balance_views())
        for who, view in zip(USERS, views, strict=True):
            a = self.model.accounts[who]
            held_promo, held_purchased = self.model.held(who)
            expected = {
                "user_id": self.user_ids[who],
                "balance": a.wallet + a.promo,
                "available": self.model.available(who),
                "held": held_promo + held_purchased,
                "promo": a.promo - held_promo,
                "total_earned": a.earned,
                "total_spent": a.spent,
                "total_purchased": a.purchased,
            }
            assert view == expected, (who, view, expected)

    @invariant()
    def the_ledger_check_finds_nothing(self) -> None:
        report = self.run(self.g.billing.check())
        new = [f for f in report.findings if (f.invariant, f.subject) not in self.found_before]
        assert not new, report.lines()

    def teardown(self) -> None:
        """Cancel what is still open. Only cleanup: a failure here would be reported oddly by Hypothesis;
        cancels are checked by their rule, and the next example has buyers of its own and does not count
        what the check found before it (``found_before``)."""
        for task_id in self.model.open():
            who = self.model.tasks[task_id].user
            with contextlib.suppress(Exception):
                self.run(self.g.gw.post(f"/api/v1/tasks/{task_id}/cancel", headers=self.headers[who]))


async def test_every_balance_follows_the_model_through_the_gateway(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two new users an example: Argon2id at its lowest cost, or their sign-ups would take seconds.
    monkeypatch.setattr(passwords, "_HASHER", cheap_hasher())
    async with gateway(tmp_path, database_url) as g:
        loop = asyncio.get_running_loop()
        stopped = threading.Event()  # the test is over (or was stopped): no step may wait for the loop

        def call(coro: Coroutine[Any, Any, T]) -> T:
            if stopped.is_set():
                coro.close()
                raise RuntimeError("the test has stopped; its gateway no longer answers")
            future = asyncio.run_coroutine_threadsafe(coro, loop)
            try:
                return future.result(timeout=STEP_TIMEOUT)
            except TimeoutError:
                future.cancel()
                raise

        GatewayMachine.call = staticmethod(call)
        GatewayMachine.g = g
        try:
            await asyncio.to_thread(
                run_state_machine_as_test,
                GatewayMachine,
                settings=settings(
                    max_examples=10,
                    stateful_step_count=20,
                    deadline=None,
                    # Not shrunk: one replay costs about a second, and shrinking a failure takes minutes
                    # (past the suite's timeout). A failing run prints its steps (at most 20); add
                    # Phase.shrink here to shrink one while investigating.
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                ),
            )
        finally:
            stopped.set()
            g.agent.never.set()
