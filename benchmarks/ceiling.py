"""Throughput ceiling: bare Starlette answering POST /a2a with a fixed completed task, unparsed.

Same uvicorn options as the agents, so the gap between this and an agent is what the agent's own
work (parsing, validation, persistence, serialisation) costs.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Shaped and sized like a real echo reply (about 500 bytes), so response writing costs the same.
FIXED_REPLY = (
    b'{"jsonrpc":"2.0","id":1,"result":{"task":{"id":"8a1d0c7e-0f4b-4c1e-9a55-2b8e3f7d6c10",'
    b'"contextId":"3c9e6b2a-5d4f-4e8a-b1c7-9f0a2d3e4b5c",'
    b'"status":{"state":"TASK_STATE_COMPLETED","timestamp":"2026-01-01T00:00:00.000Z"},'
    b'"artifacts":[{"artifactId":"5e7f8a9b-0c1d-4e2f-8a3b-4c5d6e7f8a9b","name":"echo",'
    b'"parts":[{"text":"hello"}]}],"history":[{"messageId":"bench","contextId":'
    b'"3c9e6b2a-5d4f-4e8a-b1c7-9f0a2d3e4b5c","taskId":"8a1d0c7e-0f4b-4c1e-9a55-2b8e3f7d6c10",'
    b'"role":"ROLE_USER","parts":[{"text":"hello"}]}]}}}'
)


async def a2a(request: Request) -> Response:
    """Drain the request body (any real server must) and return the fixed reply."""
    await request.body()
    return Response(FIXED_REPLY, media_type="application/json")


app = Starlette(routes=[Route("/a2a", a2a, methods=["POST"])])


def main() -> None:
    """Serve the ceiling app on loopback with uvloop, httptools and no access log."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
