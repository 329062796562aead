"""Reference echo agent on the official a2a-sdk server: python -m benchmarks.reference_echo --port N."""

from __future__ import annotations

import argparse

import uvicorn
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import DatabaseTaskStore, InMemoryTaskStore, TaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
    Task,
    TaskState,
    TaskStatus,
)
from starlette.applications import Starlette

RPC_PATH = "/a2a"


class EchoExecutor(AgentExecutor):
    """Answers every message with a completed task holding one "echo: <text>" artifact."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Create the task if new, attach the echo artifact, then complete it."""
        message = context.message
        assert message is not None and context.task_id and context.context_id
        if context.current_task is None:
            # The SDK only accepts updates for a task it has seen, so announce it first.
            await event_queue.enqueue_event(
                Task(
                    id=context.task_id,
                    context_id=context.context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[message],
                )
            )
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.add_artifact([Part(text=f"echo: {context.get_user_input()}")], name="echo")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Echo finishes immediately, so there is never anything to cancel."""
        raise NotImplementedError


def agent_card(port: int) -> AgentCard:
    """Build the 1.0 agent card advertising the JSON-RPC endpoint."""
    return AgentCard(
        name="Reference Echo Agent",
        description="a2a-sdk reference server used as the benchmark baseline.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(
                url=f"http://127.0.0.1:{port}{RPC_PATH}", protocol_binding="JSONRPC", protocol_version="1.0"
            )
        ],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="Echo", description="Echoes the text back.", tags=["echo"])],
    )


def task_store(kind: str, sqlite_path: str | None) -> TaskStore:
    """Pick the SDK's in-memory store, or its SQLAlchemy store on an aiosqlite file for parity with ours."""
    if kind == "memory":
        return InMemoryTaskStore()
    from sqlalchemy.ext.asyncio import create_async_engine

    if not sqlite_path:
        raise SystemExit("--sqlite-path is required with --store sqlite")
    return DatabaseTaskStore(create_async_engine(f"sqlite+aiosqlite:///{sqlite_path}"))


def create_app(port: int, store: TaskStore) -> Starlette:
    """Assemble the SDK's card and JSON-RPC routes into a Starlette app."""
    card = agent_card(port)
    handler = DefaultRequestHandler(agent_executor=EchoExecutor(), task_store=store, agent_card=card)
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url=RPC_PATH)]
    return Starlette(routes=routes)


def main() -> None:
    """Parse arguments and serve the reference agent with the same uvicorn options as ours."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--sqlite-path", default=None)
    args = parser.parse_args()
    app = create_app(args.port, task_store(args.store, args.sqlite_path))
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
