"""RunDriver: drives one run of a workflow to its end.

Every step starts the moment all its dependencies have completed (no waves); each attempt is a gateway
task through routing, with a message id fixed per attempt (``{run}:{step}:{attempt}``), so a driver that
takes a run over after a restart re-attaches to the tasks already sent instead of sending them again.
The run's state is saved at every transition, together with the events that announce it.

Time comes from an injected clock and sleep: a step's timeout and its retry backoff are sleeps, so
tests steer them without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from a2a_gateway.errors import (
    Conflict,
    GatewayError,
    InsufficientCredits,
    NotFound,
    TaskNotFound,
    Unavailable,
)
from a2a_gateway.protocol import v1
from a2a_gateway.workflows import refs
from a2a_gateway.workflows.dag import Dag
from a2a_gateway.workflows.events import RunEventHub
from a2a_gateway.workflows.models import (
    EventKind,
    Run,
    RunEvent,
    RunStatus,
    StepRun,
    StepSpec,
    StepStatus,
    Workflow,
)
from a2a_gateway.workflows.ports import RunBudgets, StepCall, StepTasks, WorkflowStore

log = logging.getLogger(__name__)

RUN_KEY = "workflowRunId"  # task metadata: the run a step's task belongs to
STEP_KEY = "workflowStep"  # and the step's index
ATTEMPT_KEY = "workflowAttempt"
MAX_ERROR = 500
MAX_QUESTION = 2000
# Attempts that end so are not tried again: the agent declined, or somebody canceled the task.
_FINAL = frozenset({v1.TaskState.REJECTED, v1.TaskState.CANCELED})
_NEW, _RESEND, _ATTACH = "new", "resend", "attach"  # how an attempt begins


@dataclass(frozen=True, slots=True)
class EngineDeps:
    """What every driver uses."""

    store: WorkflowStore
    tasks: StepTasks
    budgets: RunBudgets
    hub: RunEventHub
    clock: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]]
    agent_key: str = "agentId"  # routing's metadata keys (routing.metadata), passed in by the service
    skill_key: str = "skillId"


class _Lost(Exception):
    """The run can no longer be saved by this driver: another took it over, or the store failed."""


@dataclass(frozen=True, slots=True)
class _Ended:
    """How one attempt ended: ``retry`` when another attempt may follow."""

    state: v1.TaskState | None
    error: str | None = None
    retry: bool = False
    output: list[dict[str, Any]] | None = None


def message_id(run_id: str, index: int, attempt: int) -> str:
    """The message id of one attempt of one step (the same every time the attempt is sent)."""
    return f"{run_id}:{index}:{attempt}"


class RunDriver:
    """Drives one run; ``done`` resolves when the run has ended (or the driver was stopped)."""

    def __init__(self, workflow: Workflow, run: Run, deps: EngineDeps) -> None:
        self.run = run
        self._wf = workflow
        self._deps = deps
        self._dag = Dag(workflow.steps)
        self._steps: dict[int, asyncio.Task[None]] = {}
        self._outbox: list[RunEvent] = []
        self._save_lock = asyncio.Lock()
        self._canceling = False
        self._stopping = False
        self._saved_seq = run.seq  # what the store holds: a save from a stale driver is refused
        self._stops: set[asyncio.Task[None]] = set()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # --- commands -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin (or, after a takeover, resume) the run: active steps re-attach, ready steps start."""
        for step in self.run.steps:
            if step.status.active:
                self._spawn(step.index, resumed=True)
        try:
            await self._advance()
        except _Lost:
            self._lose()

    async def cancel(self) -> None:
        """Stop running steps (canceling their tasks), skip the rest, end the run canceled."""
        if self.run.status.ended or self._canceling:
            return
        self._canceling = True
        running = [t for t in self._steps.values() if not t.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for step in self.run.steps:
            if step.status.active:
                self._end_step(step, StepStatus.CANCELED, "the run was canceled")
            elif step.status is StepStatus.PENDING:
                step.status = StepStatus.SKIPPED
                step.ended_at = self._deps.clock()
                self._emit(EventKind.STEP_SKIPPED, step=step.index, reason="the run was canceled")
        try:
            await self._finish(RunStatus.CANCELED, "canceled by its owner")
        except _Lost:
            self._lose()
            raise Unavailable("The run's cancellation could not be saved; try again") from None

    async def reply(self, index: int, parts: list[v1.Part]) -> None:
        """Answer the question a step's task asked."""
        step = self.run.steps[index]
        if step.status is not StepStatus.INPUT_REQUIRED or step.task_id is None:
            raise Conflict(f"step {index} is not waiting for input (it is {step.status.value})")
        await self._deps.tasks.reply(self.run.owner_id, step.task_id, parts)

    async def stop(self) -> None:
        """Let the run go without touching its tasks (shutdown, or the lease moved): what is saved is
        where the next driver picks it up."""
        self._stopping = True
        running = [t for t in self._steps.values() if not t.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if not self.done.done():
            self.done.set_result(None)

    # --- scheduling ---------------------------------------------------------------------------------

    def _spawn(self, index: int, *, resumed: bool = False) -> None:
        coro = self._drive_step(index, resumed)
        task = asyncio.create_task(coro, name=f"run {self.run.id} step {index}")
        self._steps[index] = task

    async def _advance(self) -> None:
        """Start every ready step; end the run when nothing is left to do."""
        if self.run.status.ended or self._canceling or self._stopping:
            return
        statuses = [s.status for s in self.run.steps]
        for index in self._dag.ready(statuses):
            self.run.steps[index].status = StepStatus.RUNNING  # claimed: not started twice
            self._spawn(index)
        if any(s.status.active for s in self.run.steps):
            await self._save()
            return
        failed = [s for s in self.run.steps if s.status is StepStatus.FAILED]
        if failed:
            names = ", ".join(f"{s.index} ({self._wf.steps[s.index].name})" for s in failed)
            await self._finish(RunStatus.FAILED, f"{len(failed)} step(s) failed: {names}"[:MAX_ERROR])
        else:
            await self._finish(RunStatus.COMPLETED, None)

    async def _finish(self, status: RunStatus, error: str | None) -> None:
        run = self.run
        run.status = status
        run.error = error
        run.ended_at = self._deps.clock()
        kind = {
            RunStatus.COMPLETED: EventKind.RUN_COMPLETED,
            RunStatus.FAILED: EventKind.RUN_FAILED,
            RunStatus.CANCELED: EventKind.RUN_CANCELED,
        }[status]
        data: dict[str, Any] = {"status": status.value}
        if error:
            data["error"] = error
        if status is RunStatus.COMPLETED:
            data["outputs"] = final_outputs(self._wf, run)
        self._emit(kind, **data)
        # The budget closes before the run's end is saved: a driver that takes over a run whose end was
        # not saved closes it again (a no-op) and saves the end.
        try:
            await self._deps.budgets.close(run.id)
        except Exception:
            log.exception("closing a run's budget failed", extra={"runId": run.id})
        await self._save()
        if not self.done.done():
            self.done.set_result(None)

    # --- one step -----------------------------------------------------------------------------------

    async def _drive_step(self, index: int, resumed: bool) -> None:
        step = self.run.steps[index]
        spec = self._wf.steps[index]
        try:
            while True:
                mode = _NEW
                if resumed and step.status in (StepStatus.RUNNING, StepStatus.INPUT_REQUIRED):
                    # Taken over: follow the attempt's task, or send its message again when the task
                    # id was not saved (the send is idempotent: it finds the task if there is one).
                    mode = _ATTACH if step.task_id is not None else _RESEND
                resumed = False
                if step.status is StepStatus.RETRY_WAIT:
                    await self._wait_retry(step)
                ended = await self._attempt(step, spec, mode if step.attempt else _NEW)
                if ended.state is v1.TaskState.COMPLETED:
                    step.output = ended.output or []
                    self._end_step(step, StepStatus.COMPLETED, None)
                    break
                if ended.retry and step.attempt <= spec.retry.max_retries:
                    wait = spec.retry.wait_s(step.attempt)
                    step.status = StepStatus.RETRY_WAIT
                    step.retry_at = self._deps.clock() + timedelta(seconds=wait)
                    step.error = ended.error
                    step.question = None
                    self._emit(
                        EventKind.STEP_RETRY,
                        step=index,
                        attempt=step.attempt,
                        nextAttempt=step.attempt + 1,
                        waitMs=int(wait * 1000),
                        error=ended.error,
                    )
                    await self._save()
                    continue
                self._end_step(step, StepStatus.FAILED, ended.error or "the step failed")
                self._skip_dependents(index)
                break
        except asyncio.CancelledError:
            if self._canceling and step.task_id is not None and step.status.active:
                with contextlib.suppress(Exception):
                    await self._deps.tasks.cancel(self.run.owner_id, step.task_id)
            raise
        except _Lost:
            self._lose()
            return
        except Exception as exc:  # a bug: the step fails rather than hang the run
            log.exception("a workflow step broke", extra={"runId": self.run.id, "step": index})
            if not step.status.ended:
                self._end_step(step, StepStatus.FAILED, f"the step broke: {type(exc).__name__}")
                self._skip_dependents(index)
        self._steps.pop(index, None)
        try:
            await self._advance()
        except _Lost:
            self._lose()

    async def _wait_retry(self, step: StepRun) -> None:
        if step.retry_at is not None:
            left = (step.retry_at - self._deps.clock()).total_seconds()
            if left > 0:
                await self._deps.sleep(left)
        step.retry_at = None

    async def _attempt(self, step: StepRun, spec: StepSpec, mode: str) -> _Ended:
        run = self.run
        parts: list[v1.Part] = []
        if mode == _NEW:
            step.attempt += 1
            step.started_at = self._deps.clock()
            step.task_id = None
            step.question = None
        if mode != _ATTACH:
            try:
                parts = self._parts(step.index, spec)
            except refs.Unresolvable as exc:
                return _Ended(None, str(exc)[:MAX_ERROR])
        call = StepCall(
            owner_id=run.owner_id,
            agent_id=spec.agent_id,
            skill_id=spec.skill_id,
            message_id=message_id(run.id, step.index, step.attempt),
            parts=parts,
            metadata={
                self._deps.agent_key: spec.agent_id,
                self._deps.skill_key: spec.skill_id,
                RUN_KEY: run.id,
                STEP_KEY: step.index,
                ATTEMPT_KEY: step.attempt,
            },
            # Always the run's budget: a step priced after the run started is refused, never paid from
            # the wallet, so a run never spends more than it held.
            budget_id=run.id,
        )
        try:
            # Sending the attempt's message again finds the task a first send made (re-attach).
            first = await self._deps.tasks.start(call) if mode != _ATTACH else None
        except (InsufficientCredits, NotFound) as exc:
            return _Ended(None, exc.message[:MAX_ERROR])
        except GatewayError as exc:
            return _Ended(None, exc.message[:MAX_ERROR], retry=True)
        if first is not None:
            step.task_id = first.id
            if first.id not in step.task_ids:
                step.task_ids.append(first.id)
            step.status = StepStatus.RUNNING
            self._emit(
                EventKind.STEP_STARTED,
                step=step.index,
                name=spec.name,
                attempt=step.attempt,
                taskId=first.id,
                agentId=spec.agent_id,
                skillId=spec.skill_id,
            )
            await self._save()
        assert step.task_id is not None
        started = step.started_at or self._deps.clock()
        left = (started + timedelta(seconds=spec.timeout_s) - self._deps.clock()).total_seconds()
        return await self._watch(step, spec, max(left, 0.0))

    async def _watch(self, step: StepRun, spec: StepSpec, seconds: float) -> _Ended:
        """Follow the attempt's task to its end, or cancel it when its time is up."""
        task_id = step.task_id
        assert task_id is not None
        following = asyncio.create_task(self._follow(step, task_id))
        timer: asyncio.Future[None] = asyncio.ensure_future(self._deps.sleep(seconds))
        try:
            await asyncio.wait((following, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not following.done():
                following.cancel()
            await asyncio.gather(timer, following, return_exceptions=True)
        if following.done() and not following.cancelled() and following.exception() is None:
            return following.result()
        if following.done() and not following.cancelled():
            exc = following.exception()
            if isinstance(exc, TaskNotFound):
                return _Ended(None, "the step's task is gone", retry=True)
            assert exc is not None
            raise exc
        # Out of time: the task is canceled, and the attempt counts as failed (it may be retried).
        with contextlib.suppress(GatewayError):
            await self._deps.tasks.cancel(self.run.owner_id, task_id)
        return _Ended(v1.TaskState.FAILED, f"the attempt timed out after {spec.timeout_s} s", retry=True)

    async def _follow(self, step: StepRun, task_id: str) -> _Ended:
        last: v1.Task | None = None
        async for snap in self._deps.tasks.follow(self.run.owner_id, task_id):
            last = snap
            state = snap.status.state
            if state.interrupted and step.status is not StepStatus.INPUT_REQUIRED:
                step.status = StepStatus.INPUT_REQUIRED
                step.question = _text(snap.status.message)[:MAX_QUESTION] or "The agent asks for input"
                self._emit(
                    EventKind.STEP_INPUT_REQUIRED,
                    step=step.index,
                    taskId=task_id,
                    state=state.name,
                    question=step.question,
                )
                await self._save()
            elif not state.interrupted and not state.terminal and step.status is StepStatus.INPUT_REQUIRED:
                step.status = StepStatus.RUNNING  # answered
                step.question = None
                await self._save()
            if state.terminal:
                break
        if last is None or not last.status.state.terminal:
            return _Ended(None, "the step's task stopped without ending", retry=True)
        state = last.status.state
        if state is v1.TaskState.COMPLETED:
            return _Ended(state, output=[artifact_json(a) for a in last.artifacts or ()])
        reason = _text(last.status.message) or f"the task ended {state.name}"
        return _Ended(state, reason[:MAX_ERROR], retry=state not in _FINAL)

    def _parts(self, index: int, spec: StepSpec) -> list[v1.Part]:
        given = {**spec.input, **self.run.inputs.get(str(index), {})}
        outputs = {
            d: self.run.steps[d].output or [] for d in spec.depends_on if self.run.steps[d].output is not None
        }
        resolved = refs.resolve(given, outputs)
        parts: list[v1.Part] = []
        text = resolved.get("text") if isinstance(resolved, dict) else None
        if isinstance(text, str) and text:
            parts.append(v1.Part(text=text))
        parts.append(v1.Part(data=resolved, media_type="application/json"))
        return parts

    def _end_step(self, step: StepRun, status: StepStatus, error: str | None) -> None:
        step.status = status
        step.ended_at = self._deps.clock()
        step.error = error
        step.question = None
        step.retry_at = None
        if status is StepStatus.COMPLETED:
            self._emit(
                EventKind.STEP_COMPLETED,
                step=step.index,
                taskId=step.task_id,
                attempt=step.attempt,
                output=refs.output_value(step.output or []),
            )
        elif status is StepStatus.FAILED:
            self._emit(EventKind.STEP_FAILED, step=step.index, taskId=step.task_id, error=error)
        elif status is StepStatus.CANCELED:
            self._emit(
                EventKind.STEP_FAILED, step=step.index, taskId=step.task_id, error=error, canceled=True
            )

    def _skip_dependents(self, index: int) -> None:
        for dep in sorted(self._dag.dependents(index)):
            step = self.run.steps[dep]
            if step.status is StepStatus.PENDING:
                step.status = StepStatus.SKIPPED
                step.ended_at = self._deps.clock()
                step.error = f"step {index} failed"
                self._emit(EventKind.STEP_SKIPPED, step=dep, reason=f"step {index} failed")

    # --- events and saving --------------------------------------------------------------------------

    def _emit(self, kind: EventKind, **data: Any) -> None:
        self.run.seq += 1
        event = RunEvent(self.run.id, self.run.seq, kind, self._deps.clock(), {"runId": self.run.id, **data})
        self._outbox.append(event)

    async def _save(self) -> None:
        """Store the run as it is now with every event emitted since the last save, then announce them.

        _Lost when the store refuses it (the run moved on under another driver) or fails: this driver
        stops, and the run continues from what was saved last, under whichever driver takes it next.
        """
        if self._stopping:
            raise _Lost("the driver is stopping")
        async with self._save_lock:
            events, self._outbox = self._outbox, []
            snapshot = self.run.copy()
            # A step's task canceled mid-save (its run is being canceled) does not take the save with
            # it: a store commits what it was given regardless, so the outcome is awaited before the lock
            # goes, and the next save expects the seq the store now has.
            saving = asyncio.ensure_future(self._deps.store.save_run(snapshot, events, self._saved_seq))
            try:
                saved = await asyncio.shield(saving)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    if await asyncio.shield(saving):
                        self._saved_seq = snapshot.seq
                        self._deps.hub.publish(events)
                raise
            except Exception as exc:
                log.warning("saving a run failed: its driver stops", extra={"runId": self.run.id})
                raise _Lost("the store failed") from exc
            if not saved:
                log.warning(
                    "a run moved on under another driver: this one stops", extra={"runId": self.run.id}
                )
                raise _Lost("taken over")
            self._saved_seq = snapshot.seq
        self._deps.hub.publish(events)

    def _lose(self) -> None:
        """Stop driving (without touching the tasks) from inside a step."""
        if not self._stopping or not self.done.done():
            stop = asyncio.create_task(self.stop())
            self._stops.add(stop)
            stop.add_done_callback(self._stops.discard)


def artifact_json(artifact: v1.Artifact) -> dict[str, Any]:
    """An artifact in A2A 1.0 JSON, as step outputs keep it."""
    dumped: dict[str, Any] = artifact.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def final_outputs(workflow: Workflow, run: Run) -> list[dict[str, Any]]:
    """The outputs of the steps nothing depends on (the run's results), in step order."""
    needed = {d for s in workflow.steps for d in s.depends_on}
    return [
        {"step": i, "name": workflow.steps[i].name, "artifacts": run.steps[i].output or []}
        for i in range(len(workflow.steps))
        if i not in needed and run.steps[i].status is StepStatus.COMPLETED
    ]


def _text(message: v1.Message | None) -> str:
    if message is None:
        return ""
    return "\n".join(p.text for p in message.parts if p.text)
