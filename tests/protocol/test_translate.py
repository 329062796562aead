"""Translation between A2A 0.3 and 1.0: property round trips, lossy corners, exact wire output."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from a2a_gateway.protocol import card_translate as C
from a2a_gateway.protocol import translate as T
from a2a_gateway.protocol import v0_3, v1
from a2a_gateway.protocol.base import WireModel
from tests.protocol import strategies as S

examples = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Conv = Callable[[Any], Any]

# (name, strategy of 1.0 values that 0.3 can hold, to_v0_3, to_v1)
V1_ROUND_TRIPS: list[tuple[str, st.SearchStrategy[Any], Conv, Conv]] = [
    ("state", S.v1_states, T.task_state_to_v0_3, T.task_state_to_v1),
    ("part", S.v1_parts(), T.part_to_v0_3, T.part_to_v1),
    ("message", S.v1_messages(), T.message_to_v0_3, T.message_to_v1),
    ("status", S.v1_statuses(), T.task_status_to_v0_3, T.task_status_to_v1),
    ("artifact", S.v1_artifacts(), T.artifact_to_v0_3, T.artifact_to_v1),
    ("task", S.v1_tasks(), T.task_to_v0_3, T.task_to_v1),
    ("status_update", S.v1_status_updates(), T.status_update_to_v0_3, T.status_update_to_v1),
    ("artifact_update", S.v1_artifact_updates(), T.artifact_update_to_v0_3, T.artifact_update_to_v1),
    ("stream_response", S.v1_stream_responses(), T.stream_response_to_v0_3, T.stream_response_to_v1),
    (
        "send_response",
        S.v1_send_message_responses(),
        T.send_message_response_to_v0_3,
        T.send_message_response_to_v1,
    ),
    ("send_request", S.v1_send_requests(), T.send_message_request_to_v0_3, T.send_message_request_to_v1),
    ("push_config", S.v1_push_configs(), T.push_config_to_v0_3, T.push_config_to_v1),
    ("authentication", S.v1_authentication, T.authentication_to_v0_3, T.authentication_to_v1),
    ("card", S.v1_cards(), C.agent_card_to_v0_3, C.agent_card_to_v1),
    ("security_scheme", S.v1_security_schemes, C.security_scheme_to_v0_3, C.security_scheme_to_v1),
    ("security", S.v1_security, C.security_requirements_to_v0_3, C.security_requirements_to_v1),
]

# (name, strategy of 0.3 values, to_v1, to_v0_3)
V0_3_ROUND_TRIPS: list[tuple[str, st.SearchStrategy[Any], Conv, Conv]] = [
    ("state", S.v0_3_states, T.task_state_to_v1, T.task_state_to_v0_3),
    ("part", S.v0_3_parts(), T.part_to_v1, T.part_to_v0_3),
    ("message", S.v0_3_messages, T.message_to_v1, T.message_to_v0_3),
    ("status", S.v0_3_statuses, T.task_status_to_v1, T.task_status_to_v0_3),
    ("artifact", S.v0_3_artifacts, T.artifact_to_v1, T.artifact_to_v0_3),
    ("task", S.v0_3_tasks, T.task_to_v1, T.task_to_v0_3),
    ("artifact_update", S.v0_3_artifact_updates, T.artifact_update_to_v1, T.artifact_update_to_v0_3),
    (
        "send_result",
        S.v0_3_tasks | S.v0_3_messages,
        T.send_message_response_to_v1,
        T.send_message_response_to_v0_3,
    ),
    ("send_params", S.v0_3_send_params, T.send_message_request_to_v1, T.send_message_request_to_v0_3),
    ("push_config", S.v0_3_push_configs, T.push_config_to_v1, T.push_config_to_v0_3),
    ("authentication", S.v0_3_authentication, T.authentication_to_v1, T.authentication_to_v0_3),
    ("card", S.v0_3_cards(), C.agent_card_to_v1, C.agent_card_to_v0_3),
    ("security_scheme", S.v0_3_security_schemes, C.security_scheme_to_v1, C.security_scheme_to_v0_3),
    ("security", S.v0_3_security, C.security_requirements_to_v1, C.security_requirements_to_v0_3),
]


def _ids(table: list[tuple[str, Any, Any, Any]]) -> list[str]:
    return [row[0] for row in table]


@pytest.mark.parametrize(("name", "strategy", "to_v0_3", "to_v1"), V1_ROUND_TRIPS, ids=_ids(V1_ROUND_TRIPS))
@examples
@given(data=st.data())
def test_v1_round_trip(name: str, strategy: Any, to_v0_3: Conv, to_v1: Conv, data: st.DataObject) -> None:
    value = data.draw(strategy)
    assert to_v1(to_v0_3(value)) == value


@pytest.mark.parametrize(
    ("name", "strategy", "to_v1", "to_v0_3"), V0_3_ROUND_TRIPS, ids=_ids(V0_3_ROUND_TRIPS)
)
@examples
@given(data=st.data())
def test_v0_3_round_trip(name: str, strategy: Any, to_v1: Conv, to_v0_3: Conv, data: st.DataObject) -> None:
    value = data.draw(strategy)
    assert to_v0_3(to_v1(value)) == value


@examples
@given(event=S.v0_3_status_updates)
def test_v0_3_status_update_round_trips_with_its_final(event: v0_3.TaskStatusUpdateEvent) -> None:
    assert T.status_update_to_v0_3(T.status_update_to_v1(event), final=event.final) == event


@examples
@given(event=S.v0_3_stream_events)
def test_v0_3_stream_event_round_trips(event: Any) -> None:
    final = event.final if isinstance(event, v0_3.TaskStatusUpdateEvent) else None
    assert T.stream_response_to_v0_3(T.stream_response_to_v1(event), final=final) == event


# --- totality over every valid 1.0 value, lossy ones included ----------------------------------------


def _valid_v0_3(value: WireModel) -> None:
    wire = json.loads(json.dumps(value.wire()))
    assert type(value).model_validate(wire) == value


@examples
@given(response=S.v1_stream_responses(lossless=False))
def test_any_v1_stream_response_translates_to_valid_v0_3(response: v1.StreamResponse) -> None:
    event = T.stream_response_to_v0_3(response)
    _valid_v0_3(event)
    T.stream_response_to_v1(event)


@examples
@given(request=S.v1_send_requests(lossless=False), config=S.v1_push_configs(lossless=False))
def test_any_v1_request_and_push_config_translate(
    request: v1.SendMessageRequest, config: v1.TaskPushNotificationConfig
) -> None:
    _valid_v0_3(T.send_message_request_to_v0_3(request))
    _valid_v0_3(T.push_config_to_v0_3(config))


@examples
@given(card=S.v1_cards(lossless=False))
def test_any_v1_card_translates_to_valid_v0_3(card: v1.AgentCard) -> None:
    legacy = C.agent_card_to_v0_3(card)
    _valid_v0_3(legacy)
    assert C.agent_card_to_v1(legacy).name == card.name


# --- wire round trips (what .wire() emits parses back to the same model) -----------------------------

WIRE_CASES: list[tuple[str, st.SearchStrategy[Any], Callable[[Any], Any]]] = [
    ("v1_stream", S.v1_stream_responses(lossless=False), v1.StreamResponse.model_validate),
    ("v1_request", S.v1_send_requests(lossless=False), v1.SendMessageRequest.model_validate),
    ("v1_card", S.v1_cards(lossless=False), v1.AgentCard.model_validate),
    ("v0_3_event", S.v0_3_stream_events, v0_3.parse_stream_event),
    ("v0_3_params", S.v0_3_send_params, v0_3.MessageSendParams.model_validate),
    ("v0_3_push", S.v0_3_push_configs, v0_3.TaskPushNotificationConfig.model_validate),
    ("v0_3_card", S.v0_3_cards(), v0_3.AgentCard.model_validate),
]


@pytest.mark.parametrize(("name", "strategy", "parse"), WIRE_CASES, ids=[c[0] for c in WIRE_CASES])
@examples
@given(data=st.data())
def test_wire_round_trip(name: str, strategy: Any, parse: Callable[[Any], Any], data: st.DataObject) -> None:
    value = data.draw(strategy)
    assert parse(json.loads(json.dumps(value.wire()))) == value


# --- exact wire output -------------------------------------------------------------------------------


def test_v0_3_part_wire_carries_kind() -> None:
    assert v0_3.TextPart(text="hi").wire() == {"kind": "text", "text": "hi"}
    assert T.part_to_v0_3(v1.Part(url="https://x/a.pdf", media_type="application/pdf")).wire() == {
        "kind": "file",
        "file": {"uri": "https://x/a.pdf", "mimeType": "application/pdf"},
    }
    assert T.part_to_v0_3(v1.Part(data={"a": None})).wire() == {"kind": "data", "data": {"a": None}}


def test_v1_part_wire_has_no_kind() -> None:
    part = T.part_to_v1(
        v0_3.FilePart(file=v0_3.FileWithBytes(bytes="aGk=", name="a.txt", mime_type="text/plain"))
    )
    assert part.wire() == {"raw": "aGk=", "filename": "a.txt", "mediaType": "text/plain"}
    assert T.part_to_v1(v0_3.DataPart(data={"k": 1})).wire() == {
        "data": {"k": 1},
        "mediaType": "application/json",
    }


def _v1_status_event(state: v1.TaskState) -> v1.TaskStatusUpdateEvent:
    stamp = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    return v1.TaskStatusUpdateEvent(
        task_id="t", context_id="c", status=v1.TaskStatus(state=state, timestamp=stamp)
    )


def test_status_event_wire_in_both_versions() -> None:
    event = _v1_status_event(v1.TaskState.WORKING)
    assert event.wire() == {
        "taskId": "t",
        "contextId": "c",
        "status": {"state": "TASK_STATE_WORKING", "timestamp": "2026-01-02T03:04:05.678Z"},
    }
    assert T.status_update_to_v0_3(event).wire() == {
        "kind": "status-update",
        "taskId": "t",
        "contextId": "c",
        "status": {"state": "working", "timestamp": "2026-01-02T03:04:05.678Z"},
        "final": False,
    }
    wrapped = v1.StreamResponse(status_update=event).wire()
    assert set(wrapped) == {"statusUpdate"}
    assert "kind" not in wrapped["statusUpdate"]
    assert "final" not in wrapped["statusUpdate"]


def test_v0_3_task_and_message_wire_carry_kind() -> None:
    task = T.task_to_v0_3(v1.Task(id="t", status=v1.TaskStatus(state=v1.TaskState.SUBMITTED)))
    assert task.wire() == {"kind": "task", "id": "t", "contextId": "", "status": {"state": "submitted"}}
    message = v1.Message(message_id="m", role=v1.Role.AGENT, parts=[v1.Part(text="x")])
    assert T.send_message_response_to_v0_3(v1.SendMessageResponse(message=message)).wire() == {
        "kind": "message",
        "messageId": "m",
        "role": "agent",
        "parts": [{"kind": "text", "text": "x"}],
    }


def test_artifact_update_wire() -> None:
    artifact = v0_3.Artifact(artifact_id="a", parts=[v0_3.TextPart(text="x")])
    event = v0_3.TaskArtifactUpdateEvent(task_id="t", context_id="c", artifact=artifact, last_chunk=True)
    assert T.stream_response_to_v1(event).wire() == {
        "artifactUpdate": {
            "taskId": "t",
            "contextId": "c",
            "artifact": {"artifactId": "a", "parts": [{"text": "x"}]},
            "lastChunk": True,
        }
    }


# --- lossy corners -----------------------------------------------------------------------------------


def test_non_object_data_is_wrapped() -> None:
    legacy = T.part_to_v0_3(v1.Part(data=[1, 2]))
    assert legacy == v0_3.DataPart(data={"value": [1, 2]})
    assert T.part_to_v1(legacy) == v1.Part(data={"value": [1, 2]}, media_type="application/json")


def test_text_and_data_part_file_attributes_are_dropped() -> None:
    text = v1.Part(text="# hi", media_type="text/markdown", filename="a.md")
    assert T.part_to_v1(T.part_to_v0_3(text)) == v1.Part(text="# hi")
    data = v1.Part(data={"a": 1}, media_type="application/vnd.x+json", filename="a.json")
    assert T.part_to_v1(T.part_to_v0_3(data)) == v1.Part(data={"a": 1}, media_type="application/json")


def test_unknown_state_is_unspecified() -> None:
    assert T.task_state_to_v1(v0_3.TaskState.UNKNOWN) is v1.TaskState.UNSPECIFIED
    assert T.task_state_to_v0_3(v1.TaskState.UNSPECIFIED) is v0_3.TaskState.UNKNOWN


@pytest.mark.parametrize(
    ("state", "final"),
    [
        (v1.TaskState.SUBMITTED, False),
        (v1.TaskState.WORKING, False),
        (v1.TaskState.UNSPECIFIED, False),
        (v1.TaskState.INPUT_REQUIRED, True),
        (v1.TaskState.AUTH_REQUIRED, True),
        (v1.TaskState.COMPLETED, True),
        (v1.TaskState.FAILED, True),
        (v1.TaskState.CANCELED, True),
        (v1.TaskState.REJECTED, True),
    ],
)
def test_final_follows_the_state_unless_overridden(state: v1.TaskState, final: bool) -> None:
    event = _v1_status_event(state)
    assert T.status_update_to_v0_3(event).final is final
    assert T.status_update_to_v0_3(event, final=not final).final is (not final)
    streamed = T.stream_response_to_v0_3(v1.StreamResponse(status_update=event), final=True)
    assert isinstance(streamed, v0_3.TaskStatusUpdateEvent)
    assert streamed.final is True


def test_empty_context_id_is_absent_in_v1() -> None:
    task = v0_3.Task(id="t", context_id="", status=v0_3.TaskStatus(state=v0_3.TaskState.WORKING))
    assert T.task_to_v1(task).context_id is None
    assert T.task_to_v0_3(T.task_to_v1(task)).context_id == ""


@pytest.mark.parametrize(("blocking", "immediate"), [(None, None), (True, False), (False, True)])
def test_blocking_is_the_opposite_of_return_immediately(
    blocking: bool | None, immediate: bool | None
) -> None:
    config = T.send_configuration_to_v1(v0_3.MessageSendConfiguration(blocking=blocking))
    assert config.return_immediately is immediate
    assert T.send_configuration_to_v0_3(config).blocking is blocking


def test_push_authentication_keeps_the_first_usable_scheme() -> None:
    info = v0_3.PushNotificationAuthenticationInfo(schemes=["", "Bearer", "Basic"], credentials="s")
    assert T.authentication_to_v1(info) == v1.AuthenticationInfo(scheme="Bearer", credentials="s")
    assert (
        T.authentication_to_v1(v0_3.PushNotificationAuthenticationInfo(schemes=[], credentials="s")) is None
    )
    config = v0_3.PushNotificationConfig(
        url="https://hook", authentication=v0_3.PushNotificationAuthenticationInfo(schemes=[])
    )
    assert T.push_notification_config_to_v1(config).authentication is None


def test_inline_push_config_and_tenant() -> None:
    params = v0_3.MessageSendParams.model_validate(
        {
            "message": {"messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "hi"}]},
            "configuration": {
                "pushNotificationConfig": {
                    "url": "https://hook",
                    "token": "tok",
                    "authentication": {"schemes": ["Bearer"], "credentials": "c"},
                }
            },
        }
    )
    request = T.send_message_request_to_v1(params)
    assert request.wire()["configuration"] == {
        "taskPushNotificationConfig": {
            "url": "https://hook",
            "token": "tok",
            "authentication": {"scheme": "Bearer", "credentials": "c"},
        }
    }
    tenanted = request.model_copy(update={"tenant": "acme"})
    assert T.send_message_request_to_v0_3(tenanted) == params


def test_push_config_shapes() -> None:
    flat = v1.TaskPushNotificationConfig.model_validate(
        {"taskId": "t", "id": "cfg", "url": "https://hook", "authentication": {"scheme": "Bearer"}}
    )
    assert T.push_config_to_v0_3(flat).wire() == {
        "taskId": "t",
        "pushNotificationConfig": {
            "id": "cfg",
            "url": "https://hook",
            "authentication": {"schemes": ["Bearer"]},
        },
    }


def test_simple_params() -> None:
    query = v0_3.TaskQueryParams(id="t", history_length=0, metadata={"a": 1})
    assert T.get_task_request_to_v1(query) == v1.GetTaskRequest(id="t", history_length=0)
    assert T.get_task_request_to_v0_3(v1.GetTaskRequest(id="t", tenant="x")) == v0_3.TaskQueryParams(id="t")
    cancel = v0_3.TaskIdParams(id="t", metadata={"why": "done"})
    assert T.cancel_task_request_to_v0_3(T.cancel_task_request_to_v1(cancel)) == cancel


def test_empty_responses_have_no_v0_3_form() -> None:
    with pytest.raises(ValueError, match="SendMessageResponse"):
        T.send_message_response_to_v0_3(v1.SendMessageResponse())
    empty = v1.StreamResponse.model_construct(
        task=None, message=None, status_update=None, artifact_update=None
    )
    with pytest.raises(ValueError, match="StreamResponse"):
        T.stream_response_to_v0_3(empty)


# --- agent cards -------------------------------------------------------------------------------------


def _v1_card(**changes: Any) -> v1.AgentCard:
    card = {
        "name": "Gateway",
        "description": "d",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": "http://h/v1", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": "http://h/legacy", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
            {
                "url": "http://h/legacy-rest",
                "protocolBinding": "HTTP+JSON",
                "protocolVersion": "0.3",
                "tenant": "x",
            },
        ],
        "capabilities": {"streaming": True, "extendedAgentCard": True},
        "securitySchemes": {
            "bearer": {"httpAuthSecurityScheme": {"scheme": "bearer", "bearerFormat": "JWT"}},
            "key": {"apiKeySecurityScheme": {"location": "header", "name": "X-API-Key"}},
        },
        "securityRequirements": [
            {"schemes": {"bearer": {"list": []}}},
            {"schemes": {"key": {"list": ["r"]}}},
        ],
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "echo", "name": "Echo", "description": "echoes", "tags": ["echo"]}],
    }
    return v1.AgentCard.model_validate({**card, **changes})


def test_card_to_v0_3_prefers_the_0_3_interface() -> None:
    legacy = C.agent_card_to_v0_3(_v1_card()).wire()
    assert legacy["protocolVersion"] == "0.3.0"
    assert legacy["url"] == "http://h/legacy"
    assert legacy["preferredTransport"] == "JSONRPC"
    assert legacy["additionalInterfaces"] == [
        {"url": "http://h/legacy", "transport": "JSONRPC"},
        {"url": "http://h/legacy-rest", "transport": "HTTP+JSON"},
    ]
    assert legacy["supportsAuthenticatedExtendedCard"] is True
    assert legacy["capabilities"] == {"streaming": True}
    assert legacy["security"] == [{"bearer": []}, {"key": ["r"]}]
    assert legacy["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }


def test_card_without_0_3_interface_uses_the_first() -> None:
    interfaces = [
        {"url": "http://h/a", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
        {"url": "http://h/b", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
    ]
    legacy = C.agent_card_to_v0_3(_v1_card(supportedInterfaces=interfaces))
    assert (legacy.url, legacy.preferred_transport, legacy.protocol_version) == (
        "http://h/a",
        "GRPC",
        "0.3.0",
    )
    assert legacy.additional_interfaces is not None
    assert [i.url for i in legacy.additional_interfaces] == ["http://h/a", "http://h/b"]


def test_v0_3_card_to_v1() -> None:
    legacy = v0_3.AgentCard.model_validate(
        {
            "protocolVersion": "0.3.0",
            "name": "Gateway",
            "description": "d",
            "url": "http://h/",
            "version": "1.0.0",
            "capabilities": {"streaming": True, "stateTransitionHistory": True},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "skills": [{"id": "echo", "name": "Echo", "description": "echoes", "tags": ["echo"]}],
            "securitySchemes": {"mtls": {"type": "mutualTLS"}, "odd": {"type": "custom", "x": 1}},
            "security": [{"mtls": []}],
            "supportsAuthenticatedExtendedCard": False,
        }
    )
    card = C.agent_card_to_v1(legacy).wire()
    assert card["supportedInterfaces"] == [
        {"url": "http://h/", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"}
    ]
    assert card["capabilities"] == {"streaming": True, "extendedAgentCard": False}
    assert card["securitySchemes"] == {"mtls": {"mtlsSecurityScheme": {}}, "odd": {"type": "custom", "x": 1}}
    assert card["securityRequirements"] == [{"schemes": {"mtls": {"list": []}}}]
    assert "protocolVersion" not in card
    assert "url" not in card


def test_security_schemes_accept_snake_case() -> None:
    scheme = {"open_id_connect_security_scheme": {"open_id_connect_url": "https://id/.well-known"}}
    assert C.security_scheme_to_v0_3(scheme) == {
        "type": "openIdConnect",
        "openIdConnectUrl": "https://id/.well-known",
    }
    oauth = {"type": "oauth2", "flows": {}, "oauth2_metadata_url": "https://m"}
    assert C.security_scheme_to_v1(oauth) == {
        "oauth2SecurityScheme": {"flows": {}, "oauth2MetadataUrl": "https://m"}
    }


# --- parsing -----------------------------------------------------------------------------------------


def test_v0_3_parses_snake_case_and_ignores_unknown_fields() -> None:
    message = v0_3.Message.model_validate(
        {
            "kind": "message",
            "message_id": "m",
            "context_id": "c",
            "reference_task_ids": ["t0"],
            "role": "user",
            "parts": [{"kind": "file", "file": {"bytes": "aGk=", "mime_type": "text/plain"}, "shiny": 1}],
            "future": {"x": 1},
        }
    )
    assert message.context_id == "c"
    assert message.reference_task_ids == ["t0"]
    assert message.wire()["parts"] == [{"kind": "file", "file": {"bytes": "aGk=", "mimeType": "text/plain"}}]
    event = v0_3.parse_stream_event(
        {
            "kind": "status-update",
            "task_id": "t",
            "context_id": "c",
            "status": {"state": "input-required"},
            "final": True,
        }
    )
    assert isinstance(event, v0_3.TaskStatusUpdateEvent)
    assert event.status.state is v0_3.TaskState.INPUT_REQUIRED


def test_v0_3_infers_a_missing_kind() -> None:
    part = TypeAdapter(v0_3.Part).validate_python({"data": {"a": 1}})
    assert isinstance(part, v0_3.DataPart)
    assert isinstance(
        v0_3.parse_send_message_result({"id": "t", "contextId": "c", "status": {"state": "working"}}),
        v0_3.Task,
    )
    artifact = {"artifactId": "a", "parts": [{"text": "x"}]}
    assert isinstance(
        v0_3.parse_stream_event({"taskId": "t", "contextId": "c", "artifact": artifact}),
        v0_3.TaskArtifactUpdateEvent,
    )
    assert isinstance(
        v0_3.parse_stream_event({"messageId": "m", "role": "agent", "parts": [{"text": "x"}]}), v0_3.Message
    )


def test_v1_parses_snake_case() -> None:
    request = v1.SendMessageRequest.model_validate(
        {
            "message": {"message_id": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]},
            "configuration": {"return_immediately": True, "history_length": 2},
            "ignored": True,
        }
    )
    assert T.send_message_request_to_v0_3(request).wire() == {
        "message": {
            "kind": "message",
            "messageId": "m",
            "role": "user",
            "parts": [{"kind": "text", "text": "hi"}],
        },
        "configuration": {"historyLength": 2, "blocking": False},
    }


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "parts": [{"kind": "text", "text": "x"}]},
        {"messageId": "", "role": "user", "parts": [{"kind": "text", "text": "x"}]},
        {"messageId": "m", "parts": [{"kind": "text", "text": "x"}]},
        {"messageId": "m", "role": "ROLE_USER", "parts": [{"kind": "text", "text": "x"}]},
        {"messageId": "m", "role": "user", "parts": []},
        {
            "messageId": "m",
            "role": "user",
            "parts": [{"kind": "file", "file": {"bytes": "aGk=", "uri": "https://x"}}],
        },
        {"messageId": "m", "role": "user", "parts": [{"kind": "file", "file": {"name": "a"}}]},
        {"messageId": "m", "role": "user", "parts": [{"kind": "data", "data": [1]}]},
        {"messageId": "m", "role": "user", "parts": [{"kind": "image", "text": "x"}]},
        {"messageId": "m", "role": "user", "parts": [{"kind": "data", "text": "x"}]},
        {"kind": "task", "messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "x"}]},
    ],
)
def test_v0_3_rejects_invalid_messages(message: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        v0_3.Message.model_validate(message)


def test_v0_3_status_update_needs_final() -> None:
    with pytest.raises(ValidationError):
        v0_3.TaskStatusUpdateEvent.model_validate(
            {"taskId": "t", "contextId": "c", "status": {"state": "working"}}
        )
