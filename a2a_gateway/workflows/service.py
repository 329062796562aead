"""WorkflowService: saves workflows, starts, follows, answers and cancels their runs, and resumes runs
that a restarted (or departed) gateway process left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from a2a_gateway.errors import Conflict, InsufficientCredits, NotFound, Unavailable
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.workflows import validation
from a2a_gateway.workflows.engine import EngineDeps, RunDriver
from a2a_gateway.workflows.events import RunEventHub
from a2a_gateway.workflows.models import Run, RunEvent, RunStatus, StepRun, StepSpec, StepStatus, Workflow
from a2a_gateway.workflows.ports import Lease, RunBudgets, RunControl, StepAgents, StepTasks, WorkflowStore

log = logging.getLogger(__name__)

MAX_PAGE = 100
RECENT_RUNS = 10
EVENT_PAGE = 200
RUN_CANCEL_WAIT_S = 10.0  # how long a cancel passed on to the run's driver waits for the run's end
REMOTE_POLL_S = 0.5  # a run stream on a process that does not drive the run reads the store this often
LEASE_TTL_S = 30.0


def lease_name(run_id: str) -> str:
    """The lease a run's driver holds."""
    return f"workflow-run:{run_id}"


class WorkflowService:
    """Workflows and runs of one gateway process; every read is scoped to the caller's user id."""

    def __init__(
        self,
        store: WorkflowStore,
        tasks: StepTasks,
        budgets: RunBudgets,
        agents: StepAgents,
        *,
        lease: Lease | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        hub: RunEventHub | None = None,
        lease_ttl_s: float = LEASE_TTL_S,
        agent_key: str = "agentId",
        skill_key: str = "skillId",
        holder: str | None = None,
        control: RunControl | None = None,
    ) -> None:
        self._store = store
        self._control = control
        self._agents = agents
        self._budgets = budgets
        self._lease = lease
        self._lease_ttl = lease_ttl_s
        self._clock = clock
        self._sleep = sleep
        self.hub = hub or RunEventHub()
        self._deps = EngineDeps(store, tasks, budgets, self.hub, clock, sleep, agent_key, skill_key)
        self._drivers: dict[str, RunDriver] = {}
        self._keepers: dict[str, asyncio.Task[None]] = {}
        self._holder = holder or uuid.uuid4().hex  # the lease names this process
        self._closing = False

    # --- workflows ----------------------------------------------------------------------------------

    async def create(self, owner_id: str, body: object) -> Workflow:
        """Validate and save a workflow; the caller must afford one run of it now (checked, not held)."""
        draft = validation.parse(body)
        steps = await self._priced(owner_id, draft.steps)
        workflow = Workflow(
            id=str(uuid.uuid4()),
            owner_id=owner_id,
            name=draft.name,
            description=draft.description,
            steps=steps,
            created_at=self._clock(),
        )
        await self._affordable(owner_id, workflow.budget)
        await self._store.add_workflow(workflow)
        return workflow

    async def list_workflows(self, owner_id: str, limit: int = 50, offset: int = 0) -> list[Workflow]:
        """The owner's workflows, newest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise validation.invalid("limit", f"1 to {MAX_PAGE}")
        if offset < 0:
            raise validation.invalid("offset", "never negative")
        return await self._store.list_workflows(owner_id, limit, offset)

    async def get(self, owner_id: str, workflow_id: str) -> tuple[Workflow, list[Run]]:
        """A workflow with its most recent runs (NotFound for anyone but its owner)."""
        workflow = await self._workflow(owner_id, workflow_id)
        runs = await self._store.runs_of(workflow.id, RECENT_RUNS)
        return workflow, [self._current(r) for r in runs]

    # --- runs ---------------------------------------------------------------------------------------

    async def execute(
        self,
        owner_id: str,
        workflow_id: str,
        inputs: object = None,
        *,
        key_id: str | None = None,
        spend_cap: int | None = None,
    ) -> Run:
        """Start a run: its budget (every step's current price) is held first, so a caller who cannot
        afford it gets InsufficientCredits (or SpendCapReached, for a capped key) and nothing starts."""
        workflow = await self._workflow(owner_id, workflow_id)
        overrides = validation.input_override(inputs, len(workflow.steps))
        # Prices may have changed since the workflow was saved: the run holds what the steps cost now.
        steps = await self._priced(owner_id, workflow.steps)
        workflow = Workflow(
            workflow.id, workflow.owner_id, workflow.name, workflow.description, steps, workflow.created_at
        )
        run = Run(
            id=str(uuid.uuid4()),
            workflow_id=workflow.id,
            owner_id=owner_id,
            status=RunStatus.RUNNING,
            steps=[StepRun(i) for i in range(len(steps))],
            created_at=self._clock(),
            budget=workflow.budget,
            inputs=overrides,
        )
        if run.budget:
            try:
                await self._budgets.open(run.id, owner_id, run.budget, key_id=key_id, spend_cap=spend_cap)
            except InsufficientCredits as exc:
                raise InsufficientCredits(
                    f"A run of this workflow costs {run.budget} credits; {exc.available} are available",
                    price=run.budget,
                    available=exc.available,
                ) from None
        try:
            await self._store.add_run(run, [])
        except BaseException:
            with contextlib.suppress(Exception):
                await self._budgets.close(run.id)
            raise
        await self._drive(workflow, run.copy())
        return self._current(run)

    async def get_run(self, owner_id: str, run_id: str) -> Run:
        """A run as it stands now (NotFound for anyone but its owner)."""
        stored = await self._store.get_run(owner_id, run_id)
        if stored is None:
            raise NotFound(f"Workflow run not found: {run_id[:64]}")
        return self._current(stored)

    async def run_and_workflow(self, owner_id: str, run_id: str) -> tuple[Run, Workflow]:
        """A run with the workflow it runs."""
        run = await self.get_run(owner_id, run_id)
        workflow = await self._store.get_workflow(None, run.workflow_id)
        if workflow is None:
            raise NotFound(f"Workflow run not found: {run_id[:64]}")
        return run, workflow

    async def cancel(self, owner_id: str, run_id: str) -> Run:
        """Cancel a run: running steps are stopped (their tasks canceled), the others skipped."""
        run = await self.get_run(owner_id, run_id)
        if run.status.ended:
            raise Conflict(f"The run has ended already ({run.status.value})")
        elsewhere = await self._driven_elsewhere(run)
        if elsewhere is not None:
            assert self._control is not None
            await self._control.ask_run_cancel(elsewhere, owner_id, run_id)
            return await self._ended(owner_id, run)
        driver = await self._driver_of(run)
        await driver.cancel()
        return driver.run.copy()

    async def reply(self, owner_id: str, run_id: str, index: int, parts: list[v1.Part]) -> Run:
        """Answer the question step ``index`` of a run asked."""
        run = await self.get_run(owner_id, run_id)
        if not 0 <= index < len(run.steps):
            raise NotFound(f"The run has no step {index}")
        if run.status.ended:
            raise Conflict(f"The run has ended already ({run.status.value})")
        elsewhere = await self._driven_elsewhere(run)
        if elsewhere is not None:
            assert self._control is not None
            if run.steps[index].status is not StepStatus.INPUT_REQUIRED:
                status = run.steps[index].status.value
                raise Conflict(f"step {index} is not waiting for input (it is {status})")
            await self._control.ask_run_reply(elsewhere, owner_id, run_id, index, parts)
            return run
        driver = await self._driver_of(run)
        await driver.reply(index, parts)
        return driver.run.copy()

    async def _driven_elsewhere(self, run: Run) -> str | None:
        """The other live process that drives the run, when there is one to pass a request on to."""
        if self._control is None or run.id in self._drivers:
            return None
        holder = await self._control.driver(run.id)
        return holder if holder is not None and holder != self._holder else None

    async def _ended(self, owner_id: str, run: Run) -> Run:
        """The run once its final event is stored (a cancel passed on to its driver)."""
        try:
            async with asyncio.timeout(RUN_CANCEL_WAIT_S):
                async for event in self._events(run, run.seq):
                    if event.kind.final:
                        break
        except TimeoutError:
            raise Unavailable(
                "The gateway process driving this run did not confirm the cancel in time; read the run"
            ) from None
        return await self.get_run(owner_id, run.id)

    async def events(self, owner_id: str, run_id: str, after_seq: int = 0) -> AsyncIterator[RunEvent]:
        """The run's events after ``after_seq`` (Last-Event-ID), then live ones until the run ends."""
        run = await self.get_run(owner_id, run_id)
        return self._events(run, after_seq)

    async def _events(self, run: Run, after_seq: int) -> AsyncIterator[RunEvent]:
        last = after_seq
        follower = self.hub.follow(run.id)  # before the stored events are read: nothing falls between
        try:
            while True:
                stored = await self._store.events_after(run.id, last, EVENT_PAGE)
                for event in stored:
                    last = event.seq
                    yield event
                    if event.kind.final:
                        return
                if len(stored) < EVENT_PAGE:
                    break
            if follower.overflowed or (await self._has_ended(run.id)):
                async for event in self._drain_store(run.id, last):
                    yield event
                return
            while True:
                heard = await self._next_event(run.id, follower.queue)
                if heard is None:
                    # Driven by another process (whose events this hub never hears): from the store.
                    async for late in self._drain_store(run.id, last):
                        last = late.seq
                        yield late
                        if late.kind.final:
                            return
                    continue
                event = heard
                if follower.overflowed:
                    async for late in self._drain_store(run.id, last):
                        yield late
                    return
                if event.seq <= last:
                    continue
                last = event.seq
                yield event
                if event.kind.final:
                    return
        finally:
            self.hub.leave(run.id, follower)

    async def _next_event(self, run_id: str, queue: asyncio.Queue[RunEvent]) -> RunEvent | None:
        """The next event this process's hub hears of the run; None after REMOTE_POLL_S without one while
        the run is not driven here (another process drives it: look in the store)."""
        if run_id in self._drivers:
            return await queue.get()
        try:
            async with asyncio.timeout(REMOTE_POLL_S):
                return await queue.get()
        except TimeoutError:
            return None

    async def _drain_store(self, run_id: str, after: int) -> AsyncIterator[RunEvent]:
        while True:
            stored = await self._store.events_after(run_id, after, EVENT_PAGE)
            for event in stored:
                after = event.seq
                yield event
            if len(stored) < EVENT_PAGE:
                return

    async def _has_ended(self, run_id: str) -> bool:
        if run_id in self._drivers:
            return False
        stored = await self._store.get_run(None, run_id)
        return stored is None or stored.status.ended

    # --- driving ------------------------------------------------------------------------------------

    async def resume(self) -> int:
        """Take over every open run nobody drives (at start, and periodically): how many were taken."""
        taken = 0
        for run in await self._store.open_runs():
            if self._closing:
                break
            if run.id in self._drivers:
                continue
            workflow = await self._store.get_workflow(None, run.workflow_id)
            if workflow is None:
                log.error("an open run's workflow is gone", extra={"runId": run.id})
                continue
            if await self._drive(workflow, run):
                taken += 1
        return taken

    async def shutdown(self) -> None:
        """Stop driving (tasks keep running, the runs stay open for the next start), let leases go."""
        self._closing = True
        drivers = list(self._drivers.values())
        for keeper in self._keepers.values():
            keeper.cancel()
        await asyncio.gather(*self._keepers.values(), return_exceptions=True)
        await asyncio.gather(*(d.stop() for d in drivers), return_exceptions=True)
        if self._lease is not None:
            for driver in drivers:
                with contextlib.suppress(Exception):
                    await self._lease.release(lease_name(driver.run.id), self._holder)
        self._drivers.clear()
        self._keepers.clear()

    def driving(self) -> int:
        """How many runs this process drives now."""
        return len(self._drivers)

    async def wait(self, run_id: str) -> None:
        """Until the run driven here has ended (at once when it is not driven here)."""
        driver = self._drivers.get(run_id)
        if driver is not None:
            await asyncio.shield(driver.done)

    async def _drive(self, workflow: Workflow, run: Run) -> bool:
        """Start driving the run here; False when another process holds its lease, or when this process
        drives it already (a takeover pass and a caller's reply may both find it undriven, and the lease
        admits both, same holder: the run keeps its one driver)."""
        if self._closing or run.id in self._drivers:
            return False
        if self._lease is not None and not await self._lease.acquire(
            lease_name(run.id), self._holder, self._lease_ttl
        ):
            return False  # another process drives it
        if self._closing or run.id in self._drivers:
            return False  # another caller here started one while the lease was being taken
        driver = RunDriver(workflow, run, self._deps)
        self._drivers[run.id] = driver
        driver.done.add_done_callback(lambda _: self._forget(run.id, driver))
        if self._lease is not None:
            self._keepers[run.id] = asyncio.create_task(self._keep_lease(driver))
        await driver.start()
        return True

    async def _keep_lease(self, driver: RunDriver) -> None:
        assert self._lease is not None
        name = lease_name(driver.run.id)
        while not driver.done.done():
            await self._sleep(self._lease_ttl / 3)
            if driver.done.done():
                break
            try:
                held = await self._lease.acquire(name, self._holder, self._lease_ttl)
            except Exception:
                log.warning("renewing a run's lease failed", extra={"runId": driver.run.id})
                continue
            if not held:
                log.warning("a run's lease moved to another process", extra={"runId": driver.run.id})
                await driver.stop()
                return
        with contextlib.suppress(Exception):
            await self._lease.release(name, self._holder)

    def _forget(self, run_id: str, driver: RunDriver) -> None:
        if self._drivers.get(run_id) is driver:
            del self._drivers[run_id]
        keeper = self._keepers.pop(run_id, None)
        if keeper is not None and driver.run.status.ended is False:
            keeper.cancel()

    async def _driver_of(self, run: Run) -> RunDriver:
        driver = self._drivers.get(run.id)
        if driver is None:
            workflow = await self._store.get_workflow(None, run.workflow_id)
            if workflow is not None:
                await self._drive(workflow, run)
            driver = self._drivers.get(run.id)
            if driver is None:
                raise Conflict("The run is driven by another gateway process; try again shortly")
        return driver

    def _current(self, run: Run) -> Run:
        driver = self._drivers.get(run.id)
        return driver.run.copy() if driver is not None else run

    # --- helpers ------------------------------------------------------------------------------------

    async def _workflow(self, owner_id: str, workflow_id: str) -> Workflow:
        workflow = await self._store.get_workflow(owner_id, workflow_id)
        if workflow is None:
            raise NotFound(f"Workflow not found: {workflow_id[:64]}")
        return workflow

    async def _priced(self, payer_id: str, steps: tuple[StepSpec, ...]) -> tuple[StepSpec, ...]:
        priced = []
        for i, step in enumerate(steps):
            try:
                price = await self._agents.skill_price(step.agent_id, step.skill_id, payer_id)
            except NotFound as exc:
                field = "skillId" if "skill" in exc.message.lower() else "agentId"
                raise validation.invalid(f"steps[{i}].{field}", exc.message) from None
            priced.append(
                StepSpec(
                    step.name,
                    step.agent_id,
                    step.skill_id,
                    step.input,
                    step.depends_on,
                    step.timeout_s,
                    step.retry,
                    price,
                )
            )
        return tuple(priced)

    async def _affordable(self, owner_id: str, budget: int) -> None:
        if budget <= 0:
            return
        available = await self._agents.available(owner_id)
        if available < budget:
            raise InsufficientCredits(
                f"A run of this workflow costs {budget} credits; {available} are available",
                price=budget,
                available=available,
            )
