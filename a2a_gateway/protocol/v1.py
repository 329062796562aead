"""A2A protocol 1.0 wire models (ProtoJSON), the canonical shapes inside the gateway."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from a2a_gateway.protocol.base import Timestamp, WireModel


class TaskState(StrEnum):
    """Lifecycle state of a task (proto enum names)."""

    UNSPECIFIED = "TASK_STATE_UNSPECIFIED"
    SUBMITTED = "TASK_STATE_SUBMITTED"
    WORKING = "TASK_STATE_WORKING"
    COMPLETED = "TASK_STATE_COMPLETED"
    FAILED = "TASK_STATE_FAILED"
    CANCELED = "TASK_STATE_CANCELED"
    INPUT_REQUIRED = "TASK_STATE_INPUT_REQUIRED"
    REJECTED = "TASK_STATE_REJECTED"
    AUTH_REQUIRED = "TASK_STATE_AUTH_REQUIRED"

    @property
    def terminal(self) -> bool:
        """True for states a task never leaves."""
        return self in TERMINAL_STATES

    @property
    def interrupted(self) -> bool:
        """True for states that wait on the client."""
        return self in INTERRUPTED_STATES


TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED})
INTERRUPTED_STATES = frozenset({TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})
_STATE_BY_NUMBER = list(TaskState)


class Role(StrEnum):
    """Who sent a message."""

    UNSPECIFIED = "ROLE_UNSPECIFIED"
    USER = "ROLE_USER"
    AGENT = "ROLE_AGENT"


_ROLE_BY_NUMBER = list(Role)


def _enum_from_number(value: object, members: list[Any]) -> object:
    """ProtoJSON parsers accept an enum's number as well as its name."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(members):
        return members[value]
    return value


class Part(WireModel):
    """One piece of content: exactly one of text, raw (base64), url or data."""

    text: str | None = None
    raw: str | None = None
    url: str | None = None
    data: Any = None
    metadata: dict[str, Any] | None = None
    filename: str | None = None
    media_type: str | None = None

    @model_validator(mode="after")
    def _exactly_one_content(self) -> Part:
        present = [n for n in ("text", "raw", "url", "data") if getattr(self, n) is not None]
        if len(present) != 1:
            raise ValueError("a part needs exactly one of text, raw, url or data")
        if self.raw is not None:
            # ProtoJSON bytes: standard or URL-safe base64, padding optional.
            padded = self.raw + "=" * (-len(self.raw) % 4)
            try:
                base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            except binascii.Error:
                raise ValueError("raw must be base64-encoded bytes") from None
        return self


class Message(WireModel):
    """One turn of communication between a client and an agent."""

    message_id: str = Field(min_length=1)
    context_id: str | None = None
    task_id: str | None = None
    role: Role
    parts: list[Part] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None
    reference_task_ids: list[str] | None = None

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: object) -> object:
        value = _enum_from_number(value, _ROLE_BY_NUMBER)
        if value == Role.UNSPECIFIED:
            raise ValueError("role must be ROLE_USER or ROLE_AGENT")
        return value


class TaskStatus(WireModel):
    """A task's state with an optional explanatory message."""

    state: TaskState
    message: Message | None = None
    timestamp: Timestamp | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _state_number(cls, value: object) -> object:
        return _enum_from_number(value, _STATE_BY_NUMBER)


class Artifact(WireModel):
    """An output of a task."""

    artifact_id: str = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    parts: list[Part] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None


class Task(WireModel):
    """The unit of work an agent performs for a client."""

    id: str
    context_id: str | None = None
    status: TaskStatus
    artifacts: list[Artifact] | None = None
    history: list[Message] | None = None
    metadata: dict[str, Any] | None = None


class TaskStatusUpdateEvent(WireModel):
    """A change of task status, streamed to subscribers."""

    task_id: str
    context_id: str
    status: TaskStatus
    metadata: dict[str, Any] | None = None


class TaskArtifactUpdateEvent(WireModel):
    """A new artifact or a chunk of one, streamed to subscribers."""

    task_id: str
    context_id: str
    artifact: Artifact
    append: bool | None = None
    last_chunk: bool | None = None
    metadata: dict[str, Any] | None = None


class StreamResponse(WireModel):
    """One streamed item: exactly one of task, message, statusUpdate, artifactUpdate."""

    task: Task | None = None
    message: Message | None = None
    status_update: TaskStatusUpdateEvent | None = None
    artifact_update: TaskArtifactUpdateEvent | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StreamResponse:
        present = [
            n for n in ("task", "message", "status_update", "artifact_update") if getattr(self, n) is not None
        ]
        if len(present) != 1:
            raise ValueError(
                "a stream response holds exactly one of task, message, statusUpdate or artifactUpdate"
            )
        return self


class SendMessageResponse(WireModel):
    """Result of SendMessage: exactly one of task or message."""

    task: Task | None = None
    message: Message | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SendMessageResponse:
        if (self.task is None) == (self.message is None):
            raise ValueError("a send response holds exactly one of task or message")
        return self


class AuthenticationInfo(WireModel):
    """How the server authenticates to a push-notification receiver."""

    scheme: str = Field(min_length=1)
    credentials: str | None = None


class TaskPushNotificationConfig(WireModel):
    """A webhook registered for a task's events."""

    tenant: str | None = None
    id: str | None = None
    task_id: str | None = None
    url: str = Field(min_length=1)
    token: str | None = None
    authentication: AuthenticationInfo | None = None


class SendMessageConfiguration(WireModel):
    """Options of a SendMessage request."""

    accepted_output_modes: list[str] | None = None
    task_push_notification_config: TaskPushNotificationConfig | None = None
    history_length: int | None = Field(default=None, ge=0)
    return_immediately: bool | None = None


class SendMessageRequest(WireModel):
    """Params of SendMessage and SendStreamingMessage."""

    tenant: str | None = None
    message: Message
    configuration: SendMessageConfiguration | None = None
    metadata: dict[str, Any] | None = None


class GetTaskRequest(WireModel):
    """Params of GetTask."""

    tenant: str | None = None
    id: str = Field(min_length=1)
    history_length: int | None = Field(default=None, ge=0)


class ListTasksRequest(WireModel):
    """Params of ListTasks."""

    tenant: str | None = None
    context_id: str | None = None
    status: TaskState | None = None
    page_size: int | None = Field(default=None, ge=1, le=100)
    page_token: str | None = None
    history_length: int | None = Field(default=None, ge=0)
    status_timestamp_after: Timestamp | None = None
    include_artifacts: bool | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _state_number(cls, value: object) -> object:
        return _enum_from_number(value, _STATE_BY_NUMBER)


class ListTasksResponse(WireModel):
    """Result of ListTasks; every field is always present."""

    tasks: list[Task]
    next_page_token: str
    page_size: int
    total_size: int

    def wire(self) -> dict[str, Any]:
        """The page with nextPageToken kept even when empty."""
        return {
            "tasks": [t.wire() for t in self.tasks],
            "nextPageToken": self.next_page_token,
            "pageSize": self.page_size,
            "totalSize": self.total_size,
        }


class CancelTaskRequest(WireModel):
    """Params of CancelTask."""

    tenant: str | None = None
    id: str = Field(min_length=1)
    metadata: dict[str, Any] | None = None


class SubscribeToTaskRequest(WireModel):
    """Params of SubscribeToTask."""

    tenant: str | None = None
    id: str = Field(min_length=1)


class TaskPushConfigRef(WireModel):
    """Params of GetTaskPushNotificationConfig and DeleteTaskPushNotificationConfig."""

    tenant: str | None = None
    task_id: str = Field(min_length=1)
    id: str = Field(min_length=1)


class ListTaskPushNotificationConfigsRequest(WireModel):
    """Params of ListTaskPushNotificationConfigs."""

    tenant: str | None = None
    task_id: str = Field(min_length=1)
    page_size: int | None = Field(default=None, ge=1, le=100)
    page_token: str | None = None


class GetExtendedAgentCardRequest(WireModel):
    """Params of GetExtendedAgentCard."""

    tenant: str | None = None


# --- agent card -------------------------------------------------------------------------------------


class AgentInterface(WireModel):
    """One endpoint of an agent with its binding and protocol version."""

    url: str
    protocol_binding: str = "JSONRPC"
    protocol_version: str = "1.0"
    tenant: str | None = None


class AgentProvider(WireModel):
    """Who runs the agent."""

    url: str
    organization: str


class AgentExtension(WireModel):
    """A protocol extension the agent supports."""

    uri: str
    description: str | None = None
    required: bool | None = None
    params: dict[str, Any] | None = None


class AgentCapabilities(WireModel):
    """Optional features the agent serves."""

    streaming: bool | None = None
    push_notifications: bool | None = None
    extensions: list[AgentExtension] | None = None
    extended_agent_card: bool | None = None


class AgentSkill(WireModel):
    """One capability of an agent."""

    id: str
    name: str
    description: str
    tags: list[str] = Field(default_factory=list)
    examples: list[str] | None = None
    input_modes: list[str] | None = None
    output_modes: list[str] | None = None
    security_requirements: list[dict[str, Any]] | None = None


class AgentCardSignature(WireModel):
    """A JWS signature over the card."""

    protected: str
    signature: str
    header: dict[str, Any] | None = None


class AgentCard(WireModel):
    """An agent's self-description (1.0 shape)."""

    name: str
    description: str
    supported_interfaces: list[AgentInterface] = Field(min_length=1)
    provider: AgentProvider | None = None
    version: str
    documentation_url: str | None = None
    capabilities: AgentCapabilities
    security_schemes: dict[str, dict[str, Any]] | None = None
    security_requirements: list[dict[str, Any]] | None = None
    default_input_modes: list[str]
    default_output_modes: list[str]
    skills: list[AgentSkill]
    signatures: list[AgentCardSignature] | None = None
    icon_url: str | None = None
