"""A2A protocol 0.3 wire models (JSON-RPC binding): objects carry ``kind``, enums are lowercase kebab."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import Discriminator, Field, Tag, TypeAdapter, model_validator

from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import Timestamp, WireModel

PROTOCOL_VERSION = "0.3.0"

# Provider, extension and signature have the same shape in both versions: 0.3 uses the 1.0 models.
AgentProvider = v1.AgentProvider
AgentExtension = v1.AgentExtension
AgentCardSignature = v1.AgentCardSignature


class TaskState(StrEnum):
    """Lifecycle state of a task (0.3 names)."""

    SUBMITTED = "submitted"
    WORKING = "working"
    INPUT_REQUIRED = "input-required"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"
    REJECTED = "rejected"
    AUTH_REQUIRED = "auth-required"
    UNKNOWN = "unknown"


class Role(StrEnum):
    """Who sent a message."""

    USER = "user"
    AGENT = "agent"


def _tag_of(value: object, infer: Callable[[Mapping[str, Any]], str | None]) -> str | None:
    """The ``kind`` of a raw dict or a model; a dict without ``kind`` gets one inferred from its keys."""
    if isinstance(value, Mapping):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else infer(value)
    kind = getattr(value, "kind", None)
    return kind if isinstance(kind, str) else None


def _infer_part(value: Mapping[str, Any]) -> str | None:
    return next((k for k in ("text", "file", "data") if k in value), None)


def _infer_event(value: Mapping[str, Any]) -> str | None:
    # Lenient towards agents that omit ``kind``: the required members tell the four objects apart.
    if "artifact" in value:
        return "artifact-update"
    if "final" in value or ("status" in value and ("taskId" in value or "task_id" in value)):
        return "status-update"
    if "status" in value:
        return "task"
    if "parts" in value:
        return "message"
    return None


def _part_tag(value: object) -> str | None:
    return _tag_of(value, _infer_part)


def _event_tag(value: object) -> str | None:
    return _tag_of(value, _infer_event)


# --- parts and messages ------------------------------------------------------------------------------


class TextPart(WireModel):
    """A piece of plain text."""

    kind: Literal["text"] = "text"
    text: str
    metadata: dict[str, Any] | None = None


def _reject_member(value: Any, member: str) -> Any:
    if isinstance(value, Mapping) and value.get(member) is not None:
        raise ValueError("a file has exactly one of bytes or uri")
    return value


class FileWithBytes(WireModel):
    """File content inline, base64 encoded."""

    bytes: str
    name: str | None = None
    mime_type: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_uri(cls, value: Any) -> Any:
        return _reject_member(value, "uri")


class FileWithUri(WireModel):
    """File content by reference."""

    uri: str
    name: str | None = None
    mime_type: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_bytes(cls, value: Any) -> Any:
        return _reject_member(value, "bytes")


class FilePart(WireModel):
    """A file, inline or by URI."""

    kind: Literal["file"] = "file"
    file: FileWithBytes | FileWithUri
    metadata: dict[str, Any] | None = None


class DataPart(WireModel):
    """Structured data: a JSON object."""

    kind: Literal["data"] = "data"
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


Part: TypeAlias = Annotated[
    Annotated[TextPart, Tag("text")] | Annotated[FilePart, Tag("file")] | Annotated[DataPart, Tag("data")],
    Discriminator(_part_tag),
]


class Message(WireModel):
    """One turn of communication between a client and an agent."""

    kind: Literal["message"] = "message"
    message_id: str = Field(min_length=1)
    context_id: str | None = None
    task_id: str | None = None
    role: Role
    parts: list[Part] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None
    reference_task_ids: list[str] | None = None


# --- tasks and events --------------------------------------------------------------------------------


class TaskStatus(WireModel):
    """A task's state with an optional explanatory message."""

    state: TaskState
    message: Message | None = None
    timestamp: Timestamp | None = None


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

    kind: Literal["task"] = "task"
    id: str
    context_id: str
    status: TaskStatus
    history: list[Message] | None = None
    artifacts: list[Artifact] | None = None
    metadata: dict[str, Any] | None = None


class TaskStatusUpdateEvent(WireModel):
    """A change of task status; ``final`` marks the last event of the interaction."""

    kind: Literal["status-update"] = "status-update"
    task_id: str
    context_id: str
    status: TaskStatus
    final: bool
    metadata: dict[str, Any] | None = None


class TaskArtifactUpdateEvent(WireModel):
    """A new artifact or a chunk of one."""

    kind: Literal["artifact-update"] = "artifact-update"
    task_id: str
    context_id: str
    artifact: Artifact
    append: bool | None = None
    last_chunk: bool | None = None
    metadata: dict[str, Any] | None = None


StreamEvent: TypeAlias = Annotated[
    Annotated[Task, Tag("task")]
    | Annotated[Message, Tag("message")]
    | Annotated[TaskStatusUpdateEvent, Tag("status-update")]
    | Annotated[TaskArtifactUpdateEvent, Tag("artifact-update")],
    Discriminator(_event_tag),
]
"""One result of message/stream or tasks/resubscribe."""

SendMessageResult: TypeAlias = Annotated[
    Annotated[Task, Tag("task")] | Annotated[Message, Tag("message")],
    Discriminator(_event_tag),
]
"""The result of message/send."""

_STREAM_EVENT: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
_SEND_MESSAGE_RESULT: TypeAdapter[SendMessageResult] = TypeAdapter(SendMessageResult)


def parse_stream_event(value: object) -> Task | Message | TaskStatusUpdateEvent | TaskArtifactUpdateEvent:
    """Validate a decoded stream result into its 0.3 model, chosen by ``kind``."""
    return _STREAM_EVENT.validate_python(value)


def parse_send_message_result(value: object) -> Task | Message:
    """Validate a decoded message/send result into a Task or a Message."""
    return _SEND_MESSAGE_RESULT.validate_python(value)


# --- push notifications ------------------------------------------------------------------------------


class PushNotificationAuthenticationInfo(WireModel):
    """How the server authenticates to a push-notification receiver."""

    schemes: list[str]
    credentials: str | None = None


class PushNotificationConfig(WireModel):
    """A webhook for a task's events."""

    id: str | None = None
    url: str = Field(min_length=1)
    token: str | None = None
    authentication: PushNotificationAuthenticationInfo | None = None


class TaskPushNotificationConfig(WireModel):
    """A webhook bound to a task (params and result of tasks/pushNotificationConfig/set)."""

    task_id: str
    push_notification_config: PushNotificationConfig


# --- request params ----------------------------------------------------------------------------------


class MessageSendConfiguration(WireModel):
    """Options of message/send; ``blocking`` absent means blocking."""

    accepted_output_modes: list[str] | None = None
    history_length: int | None = Field(default=None, ge=0)
    push_notification_config: PushNotificationConfig | None = None
    blocking: bool | None = None


class MessageSendParams(WireModel):
    """Params of message/send and message/stream."""

    message: Message
    configuration: MessageSendConfiguration | None = None
    metadata: dict[str, Any] | None = None


class TaskQueryParams(WireModel):
    """Params of tasks/get."""

    id: str = Field(min_length=1)
    history_length: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None


class TaskIdParams(WireModel):
    """Params of tasks/cancel and tasks/resubscribe."""

    id: str = Field(min_length=1)
    metadata: dict[str, Any] | None = None


class GetTaskPushNotificationConfigParams(WireModel):
    """Params of tasks/pushNotificationConfig/get (the config id may be omitted)."""

    id: str = Field(min_length=1)
    push_notification_config_id: str | None = None
    metadata: dict[str, Any] | None = None


class DeleteTaskPushNotificationConfigParams(WireModel):
    """Params of tasks/pushNotificationConfig/delete."""

    id: str = Field(min_length=1)
    push_notification_config_id: str = Field(min_length=1)
    metadata: dict[str, Any] | None = None


class ListTaskPushNotificationConfigParams(WireModel):
    """Params of tasks/pushNotificationConfig/list."""

    id: str = Field(min_length=1)
    metadata: dict[str, Any] | None = None


# --- agent card --------------------------------------------------------------------------------------


class AgentInterface(WireModel):
    """One more URL and transport the agent serves."""

    url: str
    transport: str = "JSONRPC"


class AgentCapabilities(WireModel):
    """Optional features the agent serves."""

    streaming: bool | None = None
    push_notifications: bool | None = None
    state_transition_history: bool | None = None
    extensions: list[AgentExtension] | None = None


class AgentSkill(WireModel):
    """One capability of an agent."""

    id: str
    name: str
    description: str
    tags: list[str] = Field(default_factory=list)
    examples: list[str] | None = None
    input_modes: list[str] | None = None
    output_modes: list[str] | None = None
    security: list[dict[str, list[str]]] | None = None


class AgentCard(WireModel):
    """An agent's self-description (0.3 shape)."""

    protocol_version: str = PROTOCOL_VERSION
    name: str
    description: str
    url: str
    preferred_transport: str = "JSONRPC"
    additional_interfaces: list[AgentInterface] | None = None
    icon_url: str | None = None
    provider: AgentProvider | None = None
    version: str
    documentation_url: str | None = None
    capabilities: AgentCapabilities
    security_schemes: dict[str, dict[str, Any]] | None = None
    security: list[dict[str, list[str]]] | None = None
    default_input_modes: list[str]
    default_output_modes: list[str]
    skills: list[AgentSkill]
    supports_authenticated_extended_card: bool | None = None
    signatures: list[AgentCardSignature] | None = None
