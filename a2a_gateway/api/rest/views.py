"""How the REST API shows things: users and sessions, keys, agents, tasks and their routing records.

Every view is a plain dict in the seeds' field names (camelCase); none carries secret material except
where a route adds it once (a new key's plaintext).
"""

from __future__ import annotations

from typing import Any

from a2a_gateway.auth.keys import USER_KIND
from a2a_gateway.auth.models import ApiKeyRecord, Session, User
from a2a_gateway.auth.service import CONNECT_KINDS, Introspection
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import format_timestamp, utc_now
from a2a_gateway.registry.models import Agent
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.routing.calls import RoutedCall
from a2a_gateway.routing.metadata import AGENT_KEY

# A2A task states under the seed's status names (``status`` in task views and the ``status`` filter).
STATUS_NAMES = {
    v1.TaskState.SUBMITTED: "assigned",
    v1.TaskState.WORKING: "running",
    v1.TaskState.INPUT_REQUIRED: "input_required",
    v1.TaskState.AUTH_REQUIRED: "auth_required",
    v1.TaskState.COMPLETED: "completed",
    v1.TaskState.FAILED: "failed",
    v1.TaskState.CANCELED: "cancelled",
    v1.TaskState.REJECTED: "rejected",
    v1.TaskState.UNSPECIFIED: "unknown",
}


def user_view(user: User) -> dict[str, Any]:
    """A user as the API shows it (never the password hash)."""
    return {"id": user.id, "email": user.email, "createdAt": format_timestamp(user.created_at)}


def introspection_view(answer: Introspection) -> dict[str, Any]:
    """An introspection answer: ``{"active": false}`` alone, or whom the credential stands for."""
    if not answer.active:
        return {"active": False}
    return {
        "active": True,
        "sub": answer.subject,
        "kind": answer.kind,
        "scopes": list(answer.scopes),
        "keyId": answer.key_id,
        "exp": format_timestamp(answer.expires_at) if answer.expires_at is not None else None,
    }


def session_view(session: Session) -> dict[str, Any]:
    """Tokens of a session."""
    return {
        "accessToken": session.access_token,
        "tokenType": "Bearer",
        "expiresIn": max(0, int((session.access_expires_at - utc_now()).total_seconds())),
        "refreshToken": session.refresh_token,
        "refreshExpiresAt": format_timestamp(session.refresh_expires_at),
        "user": user_view(session.user),
    }


def key_view(record: ApiKeyRecord) -> dict[str, Any]:
    """A key as listed: prefix and metadata, never the key or its hash."""
    view: dict[str, Any] = {
        "id": record.id,
        "mode": record.kind if record.kind in CONNECT_KINDS else None,
        "name": record.name,
        "prefix": record.lookup,
        "scopes": record.scopes,
        "createdAt": format_timestamp(record.created_at),
        "expiresAt": format_timestamp(record.expires_at) if record.expires_at else None,
    }
    if record.kind == USER_KIND and record.agent_id is None:
        view["dailySpendCap"] = record.daily_spend_cap  # credits per UTC day; None: no cap
    if record.revoked_at is not None:
        view["revokedAt"] = format_timestamp(record.revoked_at)
    return view


def agent_view(agent: Agent, registry: RegistryService) -> dict[str, Any]:
    """An agent as the API shows it."""
    return {
        "id": agent.id,
        "ownerId": agent.owner_id,
        "name": agent.name,
        "description": agent.description,
        "endpoint": agent.endpoint,
        "skills": [
            {"id": s.id, "name": s.name, "description": s.description, "tags": s.tags,
             "inputSchema": s.input_schema, "outputSchema": s.output_schema,
             "price": agent.price_of(s.id)}
            for s in agent.skills
        ],
        "tags": agent.tags,
        "category": agent.category,
        "metadata": agent.metadata,
        "pricePerTask": agent.price_per_task,
        "protocolVersion": agent.protocol_version,
        "status": agent.status(registry.now(), registry.offline_after_seconds),
        "lastHeartbeat": format_timestamp(agent.last_heartbeat) if agent.last_heartbeat else None,
        "trustScore": agent.trust_score,
        "health": {
            "callsFailing": agent.call_failing,
            "latencyMs": agent.latency_ms,
            "lastProbeAt": format_timestamp(agent.probed_at) if agent.probed_at else None,
            "lastProbeOk": agent.probe_ok,
        },
        "cardUrl": agent.card_url,
        "createdAt": format_timestamp(agent.created_at),
        "updatedAt": format_timestamp(agent.updated_at),
    }  # fmt: skip


def parts_view(parts: list[v1.Part]) -> list[dict[str, Any]]:
    """Parts in the seed's form: ``{"type": "text" | "data" | "file", "data": ...}``."""
    out: list[dict[str, Any]] = []
    for part in parts:
        if part.text is not None:
            out.append({"type": "text", "data": part.text})
        elif part.data is not None:
            out.append({"type": "data", "data": part.data})
        else:
            out.append({"type": "file", "data": part.url or part.raw, "mediaType": part.media_type})
    return out


def task_view(task: v1.Task) -> dict[str, Any]:
    """A gateway task in the NEXUS task shape."""
    meta = task.metadata or {}
    return {
        "id": task.id,
        "assignedAgentId": meta.get(AGENT_KEY),
        "status": STATUS_NAMES[task.status.state],
        "updatedAt": format_timestamp(task.status.timestamp) if task.status.timestamp else None,
        "messages": [
            {"role": "user" if m.role is v1.Role.USER else "agent", "parts": parts_view(m.parts)}
            for m in task.history or []
        ],
        "artifacts": [
            {"id": a.artifact_id, "name": a.name, "parts": parts_view(a.parts)} for a in task.artifacts or []
        ],
    }


def routing_view(call: RoutedCall) -> dict[str, Any]:
    """The gateway's record of how a task was routed: agent, upstream ids, timings, outcome."""
    return {
        "agentId": call.agent_id,
        "skillId": call.skill_id,
        "upstreamTaskId": call.upstream_task_id,
        "upstreamContextId": call.upstream_context_id,
        "startedAt": format_timestamp(call.started_at),
        "firstResponseMs": call.first_response_ms,
        "finishedAt": format_timestamp(call.finished_at) if call.finished_at else None,
        "durationMs": call.duration_ms,
        "outcome": call.outcome,
        "error": call.error,
    }
