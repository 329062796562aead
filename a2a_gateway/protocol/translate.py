"""A2A 0.3 <-> 1.0 translation: total, pure functions over the wire models.

Agent cards are translated in ``card_translate``.

``x_to_v1`` takes a 0.3 object and returns its 1.0 form; ``x_to_v0_3`` goes the other way. A 0.3 object
survives ``to_v0_3(to_v1(x))`` exactly except where noted; 1.0 objects survive ``to_v1(to_v0_3(x))``
exactly except for what 0.3 has no place for. Nothing is smuggled through ``metadata``.

Lossy corners:

* Part, 1.0 -> 0.3: a text part's ``filename`` and ``mediaType`` are dropped; a data part's ``filename``
  is dropped and its ``mediaType`` comes back as ``application/json``; a ``data`` value that is not a JSON
  object is wrapped as ``{"value": data}`` and comes back wrapped.
* Task ``contextId`` and a 0.3 push config's ``taskId`` are required strings in 0.3: an absent 1.0 value
  becomes ``""`` and ``""`` becomes absent again, so a 1.0 empty string comes back absent.
* ``tenant`` (SendMessageRequest, push configs, GetTaskRequest, ...) has no 0.3 place and is dropped; so is
  ``taskId`` of the inline push config of a SendMessageRequest (the spec leaves it empty there).
* TaskStatusUpdateEvent: 0.3 ``final`` is dropped going to 1.0 (the stream close carries it); going to 0.3
  it is true for terminal and interrupted states unless the caller passes ``final``.
* Push authentication: 0.3 ``schemes`` becomes 1.0 ``scheme`` = the first non-empty entry, the others are
  dropped; with no non-empty entry the whole ``authentication`` (credentials included) is dropped.
* ``metadata`` of 0.3 TaskQueryParams is dropped (1.0 GetTaskRequest has none).
* A StreamResponse or SendMessageResponse holding nothing is not a valid input: ``ValueError``.
"""

from __future__ import annotations

from typing import Any

from a2a_gateway.protocol import v0_3, v1

JSON_MEDIA_TYPE = "application/json"

_STATE_TO_V1 = {
    v0_3.TaskState.SUBMITTED: v1.TaskState.SUBMITTED,
    v0_3.TaskState.WORKING: v1.TaskState.WORKING,
    v0_3.TaskState.INPUT_REQUIRED: v1.TaskState.INPUT_REQUIRED,
    v0_3.TaskState.COMPLETED: v1.TaskState.COMPLETED,
    v0_3.TaskState.CANCELED: v1.TaskState.CANCELED,
    v0_3.TaskState.FAILED: v1.TaskState.FAILED,
    v0_3.TaskState.REJECTED: v1.TaskState.REJECTED,
    v0_3.TaskState.AUTH_REQUIRED: v1.TaskState.AUTH_REQUIRED,
    v0_3.TaskState.UNKNOWN: v1.TaskState.UNSPECIFIED,
}
_STATE_TO_V0_3 = {new: old for old, new in _STATE_TO_V1.items()}

Event0_3 = v0_3.Task | v0_3.Message | v0_3.TaskStatusUpdateEvent | v0_3.TaskArtifactUpdateEvent
"""A bare 0.3 stream result (what a 1.0 StreamResponse wraps)."""


def _absent_if_empty(value: str) -> str | None:
    return value or None


# --- states, parts, messages -------------------------------------------------------------------------


def task_state_to_v1(state: v0_3.TaskState) -> v1.TaskState:
    """0.3 state name to the 1.0 enum (``unknown`` is TASK_STATE_UNSPECIFIED)."""
    return _STATE_TO_V1[state]


def task_state_to_v0_3(state: v1.TaskState) -> v0_3.TaskState:
    """1.0 state to the 0.3 name (TASK_STATE_UNSPECIFIED is ``unknown``)."""
    return _STATE_TO_V0_3[state]


def _role_to_v1(role: v0_3.Role) -> v1.Role:
    return v1.Role.AGENT if role is v0_3.Role.AGENT else v1.Role.USER


def _role_to_v0_3(role: v1.Role) -> v0_3.Role:
    # ROLE_UNSPECIFIED cannot pass v1.Message validation; treating it as user keeps this total.
    return v0_3.Role.AGENT if role is v1.Role.AGENT else v0_3.Role.USER


def part_to_v1(part: v0_3.Part) -> v1.Part:
    """0.3 text/file/data part to a 1.0 part."""
    if isinstance(part, v0_3.TextPart):
        return v1.Part(text=part.text, metadata=part.metadata)
    if isinstance(part, v0_3.DataPart):
        return v1.Part(data=part.data, media_type=JSON_MEDIA_TYPE, metadata=part.metadata)
    file = part.file
    if isinstance(file, v0_3.FileWithBytes):
        return v1.Part(raw=file.bytes, filename=file.name, media_type=file.mime_type, metadata=part.metadata)
    return v1.Part(url=file.uri, filename=file.name, media_type=file.mime_type, metadata=part.metadata)


def part_to_v0_3(part: v1.Part) -> v0_3.Part:
    """1.0 part to a 0.3 text/file/data part."""
    if part.text is not None:
        return v0_3.TextPart(text=part.text, metadata=part.metadata)
    if part.raw is not None:
        inline = v0_3.FileWithBytes(bytes=part.raw, name=part.filename, mime_type=part.media_type)
        return v0_3.FilePart(file=inline, metadata=part.metadata)
    if part.url is not None:
        linked = v0_3.FileWithUri(uri=part.url, name=part.filename, mime_type=part.media_type)
        return v0_3.FilePart(file=linked, metadata=part.metadata)
    data: Any = part.data
    return v0_3.DataPart(data=data if isinstance(data, dict) else {"value": data}, metadata=part.metadata)


def message_to_v1(message: v0_3.Message) -> v1.Message:
    """0.3 message to a 1.0 message."""
    return v1.Message(
        message_id=message.message_id,
        context_id=message.context_id,
        task_id=message.task_id,
        role=_role_to_v1(message.role),
        parts=[part_to_v1(p) for p in message.parts],
        metadata=message.metadata,
        extensions=message.extensions,
        reference_task_ids=message.reference_task_ids,
    )


def message_to_v0_3(message: v1.Message) -> v0_3.Message:
    """1.0 message to a 0.3 message."""
    return v0_3.Message(
        message_id=message.message_id,
        context_id=message.context_id,
        task_id=message.task_id,
        role=_role_to_v0_3(message.role),
        parts=[part_to_v0_3(p) for p in message.parts],
        metadata=message.metadata,
        extensions=message.extensions,
        reference_task_ids=message.reference_task_ids,
    )


# --- tasks and events --------------------------------------------------------------------------------


def task_status_to_v1(status: v0_3.TaskStatus) -> v1.TaskStatus:
    """0.3 task status to 1.0."""
    message = None if status.message is None else message_to_v1(status.message)
    return v1.TaskStatus(state=task_state_to_v1(status.state), message=message, timestamp=status.timestamp)


def task_status_to_v0_3(status: v1.TaskStatus) -> v0_3.TaskStatus:
    """1.0 task status to 0.3."""
    message = None if status.message is None else message_to_v0_3(status.message)
    return v0_3.TaskStatus(
        state=task_state_to_v0_3(status.state), message=message, timestamp=status.timestamp
    )


def artifact_to_v1(artifact: v0_3.Artifact) -> v1.Artifact:
    """0.3 artifact to 1.0."""
    return v1.Artifact(
        artifact_id=artifact.artifact_id,
        name=artifact.name,
        description=artifact.description,
        parts=[part_to_v1(p) for p in artifact.parts],
        metadata=artifact.metadata,
        extensions=artifact.extensions,
    )


def artifact_to_v0_3(artifact: v1.Artifact) -> v0_3.Artifact:
    """1.0 artifact to 0.3."""
    return v0_3.Artifact(
        artifact_id=artifact.artifact_id,
        name=artifact.name,
        description=artifact.description,
        parts=[part_to_v0_3(p) for p in artifact.parts],
        metadata=artifact.metadata,
        extensions=artifact.extensions,
    )


def task_to_v1(task: v0_3.Task) -> v1.Task:
    """0.3 task to 1.0 (an empty contextId becomes absent)."""
    return v1.Task(
        id=task.id,
        context_id=_absent_if_empty(task.context_id),
        status=task_status_to_v1(task.status),
        artifacts=None if task.artifacts is None else [artifact_to_v1(a) for a in task.artifacts],
        history=None if task.history is None else [message_to_v1(m) for m in task.history],
        metadata=task.metadata,
    )


def task_to_v0_3(task: v1.Task) -> v0_3.Task:
    """1.0 task to 0.3 (an absent contextId becomes ``""``, which 0.3 requires)."""
    return v0_3.Task(
        id=task.id,
        context_id=task.context_id or "",
        status=task_status_to_v0_3(task.status),
        artifacts=None if task.artifacts is None else [artifact_to_v0_3(a) for a in task.artifacts],
        history=None if task.history is None else [message_to_v0_3(m) for m in task.history],
        metadata=task.metadata,
    )


def status_update_to_v1(event: v0_3.TaskStatusUpdateEvent) -> v1.TaskStatusUpdateEvent:
    """0.3 status-update to 1.0; ``final`` has no 1.0 field and is dropped."""
    return v1.TaskStatusUpdateEvent(
        task_id=event.task_id,
        context_id=event.context_id,
        status=task_status_to_v1(event.status),
        metadata=event.metadata,
    )


def status_update_to_v0_3(
    event: v1.TaskStatusUpdateEvent, *, final: bool | None = None
) -> v0_3.TaskStatusUpdateEvent:
    """1.0 status update to 0.3; ``final`` defaults to terminal-or-interrupted."""
    state = event.status.state
    return v0_3.TaskStatusUpdateEvent(
        task_id=event.task_id,
        context_id=event.context_id,
        status=task_status_to_v0_3(event.status),
        final=(state.terminal or state.interrupted) if final is None else final,
        metadata=event.metadata,
    )


def artifact_update_to_v1(event: v0_3.TaskArtifactUpdateEvent) -> v1.TaskArtifactUpdateEvent:
    """0.3 artifact-update to 1.0."""
    return v1.TaskArtifactUpdateEvent(
        task_id=event.task_id,
        context_id=event.context_id,
        artifact=artifact_to_v1(event.artifact),
        append=event.append,
        last_chunk=event.last_chunk,
        metadata=event.metadata,
    )


def artifact_update_to_v0_3(event: v1.TaskArtifactUpdateEvent) -> v0_3.TaskArtifactUpdateEvent:
    """1.0 artifact update to 0.3."""
    return v0_3.TaskArtifactUpdateEvent(
        task_id=event.task_id,
        context_id=event.context_id,
        artifact=artifact_to_v0_3(event.artifact),
        append=event.append,
        last_chunk=event.last_chunk,
        metadata=event.metadata,
    )


def stream_response_to_v1(event: Event0_3) -> v1.StreamResponse:
    """A bare 0.3 stream result (told apart by ``kind``) to a 1.0 StreamResponse wrapper."""
    if isinstance(event, v0_3.TaskStatusUpdateEvent):
        return v1.StreamResponse(status_update=status_update_to_v1(event))
    if isinstance(event, v0_3.TaskArtifactUpdateEvent):
        return v1.StreamResponse(artifact_update=artifact_update_to_v1(event))
    if isinstance(event, v0_3.Task):
        return v1.StreamResponse(task=task_to_v1(event))
    return v1.StreamResponse(message=message_to_v1(event))


def stream_response_to_v0_3(response: v1.StreamResponse, *, final: bool | None = None) -> Event0_3:
    """A 1.0 StreamResponse to the bare 0.3 event; ``final`` is passed to status updates."""
    if response.status_update is not None:
        return status_update_to_v0_3(response.status_update, final=final)
    if response.artifact_update is not None:
        return artifact_update_to_v0_3(response.artifact_update)
    if response.task is not None:
        return task_to_v0_3(response.task)
    if response.message is not None:
        return message_to_v0_3(response.message)
    raise ValueError("an empty StreamResponse has no 0.3 form")


def send_message_response_to_v1(result: v0_3.Task | v0_3.Message) -> v1.SendMessageResponse:
    """A bare 0.3 message/send result to a 1.0 SendMessageResponse."""
    if isinstance(result, v0_3.Task):
        return v1.SendMessageResponse(task=task_to_v1(result))
    return v1.SendMessageResponse(message=message_to_v1(result))


def send_message_response_to_v0_3(response: v1.SendMessageResponse) -> v0_3.Task | v0_3.Message:
    """A 1.0 SendMessageResponse to the bare 0.3 Task or Message."""
    if response.task is not None:
        return task_to_v0_3(response.task)
    if response.message is not None:
        return message_to_v0_3(response.message)
    raise ValueError("an empty SendMessageResponse has no 0.3 form")


# --- push notification configs -----------------------------------------------------------------------


def authentication_to_v1(info: v0_3.PushNotificationAuthenticationInfo) -> v1.AuthenticationInfo | None:
    """0.3 schemes list to the single 1.0 scheme (the first non-empty); None when there is none."""
    scheme = next((s for s in info.schemes if s), None)
    return None if scheme is None else v1.AuthenticationInfo(scheme=scheme, credentials=info.credentials)


def authentication_to_v0_3(info: v1.AuthenticationInfo) -> v0_3.PushNotificationAuthenticationInfo:
    """1.0 authentication to 0.3 (a one-element schemes list)."""
    return v0_3.PushNotificationAuthenticationInfo(schemes=[info.scheme], credentials=info.credentials)


def push_notification_config_to_v1(
    config: v0_3.PushNotificationConfig, task_id: str | None = None
) -> v1.TaskPushNotificationConfig:
    """A 0.3 webhook config (no task) to the flat 1.0 config, bound to ``task_id`` when given."""
    auth = config.authentication
    return v1.TaskPushNotificationConfig(
        id=config.id,
        task_id=task_id,
        url=config.url,
        token=config.token,
        authentication=None if auth is None else authentication_to_v1(auth),
    )


def push_notification_config_to_v0_3(config: v1.TaskPushNotificationConfig) -> v0_3.PushNotificationConfig:
    """The flat 1.0 config to a 0.3 webhook config (taskId and tenant dropped)."""
    auth = config.authentication
    return v0_3.PushNotificationConfig(
        id=config.id,
        url=config.url,
        token=config.token,
        authentication=None if auth is None else authentication_to_v0_3(auth),
    )


def push_config_to_v1(config: v0_3.TaskPushNotificationConfig) -> v1.TaskPushNotificationConfig:
    """0.3 {taskId, pushNotificationConfig} to the flat 1.0 config."""
    return push_notification_config_to_v1(config.push_notification_config, _absent_if_empty(config.task_id))


def push_config_to_v0_3(config: v1.TaskPushNotificationConfig) -> v0_3.TaskPushNotificationConfig:
    """The flat 1.0 config to 0.3 {taskId, pushNotificationConfig}."""
    return v0_3.TaskPushNotificationConfig(
        task_id=config.task_id or "", push_notification_config=push_notification_config_to_v0_3(config)
    )


# --- request params ----------------------------------------------------------------------------------


def send_configuration_to_v1(config: v0_3.MessageSendConfiguration) -> v1.SendMessageConfiguration:
    """0.3 send options to 1.0 (``blocking: false`` is ``returnImmediately: true``)."""
    push = config.push_notification_config
    return v1.SendMessageConfiguration(
        accepted_output_modes=config.accepted_output_modes,
        task_push_notification_config=None if push is None else push_notification_config_to_v1(push),
        history_length=config.history_length,
        return_immediately=None if config.blocking is None else not config.blocking,
    )


def send_configuration_to_v0_3(config: v1.SendMessageConfiguration) -> v0_3.MessageSendConfiguration:
    """1.0 send options to 0.3 (``returnImmediately: true`` is ``blocking: false``)."""
    push = config.task_push_notification_config
    immediate = config.return_immediately
    return v0_3.MessageSendConfiguration(
        accepted_output_modes=config.accepted_output_modes,
        history_length=config.history_length,
        push_notification_config=None if push is None else push_notification_config_to_v0_3(push),
        blocking=None if immediate is None else not immediate,
    )


def send_message_request_to_v1(params: v0_3.MessageSendParams) -> v1.SendMessageRequest:
    """0.3 message/send params to a 1.0 SendMessageRequest."""
    config = params.configuration
    return v1.SendMessageRequest(
        message=message_to_v1(params.message),
        configuration=None if config is None else send_configuration_to_v1(config),
        metadata=params.metadata,
    )


def send_message_request_to_v0_3(request: v1.SendMessageRequest) -> v0_3.MessageSendParams:
    """A 1.0 SendMessageRequest to 0.3 message/send params (tenant dropped)."""
    config = request.configuration
    return v0_3.MessageSendParams(
        message=message_to_v0_3(request.message),
        configuration=None if config is None else send_configuration_to_v0_3(config),
        metadata=request.metadata,
    )


def get_task_request_to_v1(params: v0_3.TaskQueryParams) -> v1.GetTaskRequest:
    """tasks/get params to GetTask params (metadata dropped)."""
    return v1.GetTaskRequest(id=params.id, history_length=params.history_length)


def get_task_request_to_v0_3(request: v1.GetTaskRequest) -> v0_3.TaskQueryParams:
    """GetTask params to tasks/get params (tenant dropped)."""
    return v0_3.TaskQueryParams(id=request.id, history_length=request.history_length)


def cancel_task_request_to_v1(params: v0_3.TaskIdParams) -> v1.CancelTaskRequest:
    """tasks/cancel params to CancelTask params."""
    return v1.CancelTaskRequest(id=params.id, metadata=params.metadata)


def cancel_task_request_to_v0_3(request: v1.CancelTaskRequest) -> v0_3.TaskIdParams:
    """CancelTask params to tasks/cancel params (tenant dropped)."""
    return v0_3.TaskIdParams(id=request.id, metadata=request.metadata)
