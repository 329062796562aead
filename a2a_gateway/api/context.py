"""What a JSON-RPC handler knows about the call it serves."""

from __future__ import annotations

from dataclasses import dataclass

from a2a_gateway.auth.models import Principal
from a2a_gateway.protocol.jsonrpc import RequestId
from a2a_gateway.protocol.version import ProtocolVersion


@dataclass(frozen=True, slots=True)
class CallContext:
    """The caller (who owns the tasks it creates), the protocol version and the request id."""

    principal: Principal
    version: ProtocolVersion
    request_id: RequestId

    @property
    def owner(self) -> str:
        """The owner id tasks are scoped to."""
        return self.principal.id
