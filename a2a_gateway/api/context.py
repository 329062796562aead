"""What a JSON-RPC handler knows about the call it serves."""

from __future__ import annotations

from dataclasses import dataclass

from a2a_gateway.agent.caller import ANONYMOUS, Caller
from a2a_gateway.auth.models import Principal
from a2a_gateway.protocol.jsonrpc import RequestId
from a2a_gateway.protocol.version import ProtocolVersion


@dataclass(frozen=True, slots=True)
class CallContext:
    """The caller (who owns the tasks it creates), the protocol version and the request id.

    ``caller`` is who the call is made for, as the task's skill sees it (``SkillContext.caller``).
    """

    principal: Principal
    version: ProtocolVersion
    request_id: RequestId
    caller: Caller = ANONYMOUS

    @property
    def owner(self) -> str:
        """The owner id tasks are scoped to."""
        return self.principal.id
