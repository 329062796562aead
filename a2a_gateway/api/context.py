"""What a JSON-RPC handler knows about the call it serves."""

from __future__ import annotations

from dataclasses import dataclass

from a2a_gateway.protocol.jsonrpc import RequestId
from a2a_gateway.protocol.version import ProtocolVersion

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class CallContext:
    """The caller (owner of the tasks it creates), the protocol version and the request id."""

    owner: str
    version: ProtocolVersion
    request_id: RequestId
