"""Cluster: this process among several gateway processes on one PostgreSQL and Redis (implements
tasks.ports.TaskHolders; decision 0020).

- **Membership.** The process holds the lease ``process:{holder}`` (storage/lease.py), renewed every
  third of its lifetime; every task row it writes names it as the task's holder.
- **Takeover.** At start and at every renewal the process looks for orphans: tasks in flight whose
  holder's lease has expired (its process was killed, or stalled past the lease). It claims each one
  (compare-and-set on the holder, so one process wins), then a relay is re-attached to its upstream
  task; any other task that was running is failed with a reason, and a task paused for its caller is
  let go (holder none), to be answered by whichever process the follow-up reaches.
- **Control.** A cancel, or a follow-up to a paused task, that reaches a process which does not run
  the task is passed to the holder over the Redis stream ``{prefix}control:{holder}``; the holder acts
  on it, and the asking process hears what follows on the task's event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Coroutine
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from a2a_gateway.errors import GatewayError
from a2a_gateway.protocol import v1
from a2a_gateway.routing.service import Router
from a2a_gateway.storage.lease import SqlLease
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks.models import Orphan
from a2a_gateway.tasks.service import TaskService
from a2a_gateway.workflows.service import WorkflowService
from a2a_gateway.workflows.service import lease_name as run_lease

log = logging.getLogger(__name__)

LEASE_PREFIX: Final = "process:"
CONTROL_WINDOW: Final = 1000
CONTROL_TTL_S: Final = 3600
CONTROL_BLOCK_MS: Final = 2000  # under the Redis client's 5 s socket timeout
MAX_MESSAGE_BYTES: Final = 8 * 1024 * 1024  # a forwarded follow-up larger than this is ignored (logged)
TAKEN_OVER = (
    "The gateway process running this task stopped; another process took the task over and marked it "
    "failed, since its skill cannot go on elsewhere."
)


def new_holder() -> str:
    """A name for this process, unique across machines and restarts (at most 64 characters)."""
    host = socket.gethostname()[:32]
    return f"{host}:{os.getpid()}:{secrets.token_hex(6)}"


class Cluster:
    """Membership, orphan takeover and cancel forwarding for one gateway process."""

    def __init__(
        self,
        holder: str,
        lease: SqlLease,
        repo: SqlTaskRepository,
        redis: aioredis.Redis,
        prefix: str,
        *,
        lease_ttl_s: float,
    ) -> None:
        self.holder = holder
        self._lease = lease
        self._repo = repo
        self._redis = redis
        self._prefix = prefix
        self._ttl = lease_ttl_s
        self._service: TaskService | None = None
        self._router: Router | None = None
        self._workflows: WorkflowService | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._working: set[asyncio.Task[None]] = set()
        self._taking: dict[str, asyncio.Task[bool]] = {}
        self.taken_over = 0

    def bind(
        self, service: TaskService, router: Router | None, workflows: WorkflowService | None = None
    ) -> None:
        """The task service (and router, and workflows) the takeovers and forwarded requests act on."""
        self._service, self._router, self._workflows = service, router, workflows

    @property
    def lease_name(self) -> str:
        """The lease this process holds while it runs."""
        return LEASE_PREFIX + self.holder

    def control_key(self, holder: str) -> str:
        """The control stream of one process."""
        return f"{self._prefix}control:{holder}"

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> int:
        """Take this process's lease, take over what stopped processes left, start the loops; returns
        how many tasks were taken over."""
        if not await self._lease.acquire(self.lease_name, self.holder, self._ttl):
            raise RuntimeError("this gateway process could not take its own lease")
        start_id = await self._control_start()
        taken = await self.sweep()
        self._loops = [
            asyncio.create_task(self._renew_and_sweep()),
            asyncio.create_task(self._read_control(start_id)),
        ]
        return taken

    async def quiesce(self) -> None:
        """Stop taking tasks over and reading cancels (the process is stopping)."""
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops = []
        if self._working:
            await asyncio.gather(*self._working, return_exceptions=True)

    async def close(self) -> None:
        """Let the lease go (after the tasks stopped), so other processes take what is left over now."""
        await self.quiesce()
        try:
            await self._lease.release(self.lease_name, self.holder)
        except Exception:
            log.warning("letting this process's lease go failed; it expires by itself", exc_info=True)

    async def _renew_and_sweep(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                if not await self._lease.acquire(self.lease_name, self.holder, self._ttl):
                    log.error("this gateway process lost its lease; its tasks may be taken over")
                await self.sweep()
            except Exception:
                log.warning("renewing the process lease or the takeover pass failed", exc_info=True)

    # --- holders (tasks.ports.TaskHolders) -----------------------------------------------------------

    async def alive(self, holder: str) -> bool:
        """Whether ``holder`` holds its process lease now."""
        return holder == self.holder or holder in await self._lease.holders(LEASE_PREFIX)

    async def ask_cancel(self, holder: str, owner: str, task_id: str) -> None:
        """Queue a cancel on the holder's control stream."""
        await self._tell(holder, {b"op": b"cancel", b"owner": owner.encode(), b"task": task_id.encode()})

    async def ask_reply(self, holder: str, owner: str, message: v1.Message) -> None:
        """Queue a follow-up message on the holder's control stream."""
        await self._tell(holder, {b"op": b"reply", b"owner": owner.encode(), b"message": message.wire_json()})

    async def _tell(self, holder: str, fields: dict[Any, Any]) -> None:
        key = self.control_key(holder)
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(key, fields, maxlen=CONTROL_WINDOW, approximate=True)
        pipe.expire(key, CONTROL_TTL_S)
        await pipe.execute()

    # --- runs (workflows.ports.RunControl) -----------------------------------------------------------

    async def driver(self, run_id: str) -> str | None:
        """The process whose lease on the run has not expired."""
        return await self._lease.holder_of(run_lease(run_id))

    async def ask_run_cancel(self, holder: str, owner_id: str, run_id: str) -> None:
        """Queue a run's cancel on its driver's control stream."""
        await self._tell(holder, {b"op": b"run-cancel", b"owner": owner_id.encode(), b"run": run_id.encode()})

    async def ask_run_reply(
        self, holder: str, owner_id: str, run_id: str, index: int, parts: list[v1.Part]
    ) -> None:
        """Queue the answer to a run's step on its driver's control stream."""
        body = orjson.dumps([p.wire() for p in parts])
        fields = {
            b"op": b"run-reply",
            b"owner": owner_id.encode(),
            b"run": run_id.encode(),
            b"index": b"%d" % index,
        }
        await self._tell(holder, fields | {b"parts": body})

    async def claim(self, task_id: str, was: str | None) -> bool:
        """Make this process the task's holder if ``was`` still holds it."""
        return await self._repo.claim(task_id, was)

    async def take_over(self, task_id: str) -> bool:
        """Take one task over now if its holder stopped."""
        alive = await self._lease.holders(LEASE_PREFIX)
        found = await self._repo.orphans(alive, task_id=task_id)
        if not found:
            return False
        return await self._take(found[0])

    # --- takeover ------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """One takeover pass over the orphans; how many this process took."""
        if self._service is None:
            return 0
        alive = await self._lease.holders(LEASE_PREFIX)
        alive.add(self.holder)
        taken = 0
        for orphan in await self._repo.orphans(alive):
            try:
                taken += await self._take(orphan)
            except Exception:
                log.exception("taking a task over failed", extra={"taskId": orphan.task_id})
        if taken:
            log.info("took over %d tasks of stopped gateway processes", taken)
        return taken

    async def _take(self, orphan: Orphan) -> bool:
        """One takeover at a time per task in this process (a sweep and a cancel may both ask)."""
        running = self._taking.get(orphan.task_id)
        if running is None:
            running = asyncio.create_task(self._take_once(orphan))
            self._taking[orphan.task_id] = running
            running.add_done_callback(lambda _: self._taking.pop(orphan.task_id, None))
        return await asyncio.shield(running)

    async def _take_once(self, orphan: Orphan) -> bool:
        service = self._service
        assert service is not None
        if not await self._repo.claim(orphan.task_id, orphan.holder):
            return False  # another process was first, or the task ended meanwhile
        self.taken_over += 1
        log.info("taking a task over from %s", orphan.holder, extra={"taskId": orphan.task_id})
        if self._router is not None:
            resumed = await self._router.resume_relay(service, orphan.task_id)
            if resumed:
                return True
        if not await service.end_orphan(orphan.owner, orphan.task_id, TAKEN_OVER):
            await self._repo.let_go(orphan.task_id)  # paused for its caller: any process may answer it
        return True

    # --- control -------------------------------------------------------------------------------------

    async def _control_start(self) -> str:
        """The id after which this process reads its control stream (what was sent before is moot)."""
        try:
            last: Any = await self._redis.xrevrange(self.control_key(self.holder), count=1)
        except (RedisError, OSError):
            return "0-0"
        if not last:
            return "0-0"
        raw = last[0][0]
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def _read_control(self, last: str) -> None:
        key = self.control_key(self.holder)
        while True:
            try:
                found: Any = await self._redis.xread({key: last}, count=100, block=CONTROL_BLOCK_MS)
            except (RedisError, OSError):
                log.warning("reading this process's control stream failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for _stream, entries in found or ():
                for raw_id, fields in entries:
                    last = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                    self._obey(fields)

    def _obey(self, fields: dict[bytes, bytes]) -> None:
        op, owner = fields.get(b"op"), fields.get(b"owner")
        task_id, message = fields.get(b"task"), fields.get(b"message")
        run_id, index, parts = fields.get(b"run"), fields.get(b"index"), fields.get(b"parts")
        service, workflows = self._service, self._workflows
        work: Coroutine[Any, Any, object] | None = None
        what, about = "", {}
        if service is not None and op == b"cancel" and owner and task_id:
            work, what, about = (
                service.cancel(owner.decode(), task_id.decode()),
                "cancel",
                {"taskId": task_id.decode()},
            )
        elif (
            service is not None and op == b"reply" and owner and message and len(message) <= MAX_MESSAGE_BYTES
        ):
            work, what = _follow_up(service, owner.decode(), message), "follow-up"
        elif workflows is not None and op == b"run-cancel" and owner and run_id:
            work, what, about = (
                workflows.cancel(owner.decode(), run_id.decode()),
                "run cancel",
                {"runId": run_id.decode()},
            )
        elif (
            workflows is not None
            and op == b"run-reply"
            and owner
            and run_id
            and index is not None
            and index.isdigit()
            and parts is not None
            and len(parts) <= MAX_MESSAGE_BYTES
        ):
            work = _step_answer(workflows, owner.decode(), run_id.decode(), int(index), parts)
            what, about = "step answer", {"runId": run_id.decode()}
        if work is None:
            log.warning("ignored an unknown control message")
            return
        job = asyncio.create_task(_carry_out(what, work, about))
        self._working.add(job)
        job.add_done_callback(self._working.discard)


async def _carry_out(what: str, work: Awaitable[object], about: dict[str, str]) -> None:
    """Do what another process asked for; a refusal is logged (the asker hears the outcome from the
    task's or run's events), never raised."""
    try:
        await work
    except GatewayError as refused:
        log.info("a forwarded %s was refused: %s", what, refused.reason, extra=about)
    except Exception:
        log.exception("a forwarded %s failed", what, extra=about)


async def _follow_up(service: TaskService, owner: str, raw: bytes) -> None:
    message = v1.Message.model_validate(orjson.loads(raw))
    config = v1.SendMessageConfiguration(return_immediately=True)
    await service.send(owner, v1.SendMessageRequest(message=message, configuration=config), streaming=False)


async def _step_answer(
    workflows: WorkflowService, owner_id: str, run_id: str, index: int, raw: bytes
) -> None:
    parts = [v1.Part.model_validate(p) for p in orjson.loads(raw)]
    await workflows.reply(owner_id, run_id, index, parts)
