"""Hypothesis strategies for valid A2A 1.0 and 0.3 wire objects.

``lossless=True`` keeps 1.0 values inside what 0.3 can represent, so ``to_v1(to_v0_3(x)) == x`` holds;
0.3 strategies build canonical values (see the lossy corners in translate.py and card_translate.py).
"""

from __future__ import annotations

import base64
import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from hypothesis import strategies as st

from a2a_gateway.protocol import v0_3, v1

T = TypeVar("T")

ids = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=10)
texts = st.text(max_size=12)
urls = ids.map(lambda s: f"https://example.com/{s}")
media_types = st.sampled_from(["text/plain", "image/png", "application/pdf", "application/json"])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=4,
)
json_objects = st.dictionaries(texts, json_values, max_size=3)
metadata = st.none() | json_objects
# Millisecond precision: the wire format keeps no more, so wire round trips stay exact.
timestamps = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
base64_text = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())


def _builds(model: Callable[..., T], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[T]:
    # st.builds would also fill the camelCase alias parameters of the pydantic signature with inferred values.
    return st.fixed_dictionaries(fields).map(lambda kwargs: model(**kwargs))


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _opt_list(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _opt(st.lists(strategy, max_size=2))


# --- 1.0 ---------------------------------------------------------------------------------------------


def v1_parts(lossless: bool = True) -> st.SearchStrategy[v1.Part]:
    """1.0 parts; lossless ones carry nothing that 0.3 drops."""
    names, media = _opt(ids), _opt(media_types)
    files = _builds(v1.Part, raw=base64_text, filename=names, media_type=media, metadata=metadata) | _builds(
        v1.Part, url=urls, filename=names, media_type=media, metadata=metadata
    )
    if lossless:
        text = _builds(v1.Part, text=texts, metadata=metadata)
        data = _builds(v1.Part, data=json_objects, media_type=st.just("application/json"), metadata=metadata)
    else:
        text = _builds(v1.Part, text=texts, filename=names, media_type=media, metadata=metadata)
        non_null = json_values.filter(lambda v: v is not None)
        data = _builds(v1.Part, data=non_null, filename=names, media_type=media, metadata=metadata)
    return text | files | data


def v1_messages(lossless: bool = True) -> st.SearchStrategy[v1.Message]:
    """1.0 messages."""
    return _builds(
        v1.Message,
        message_id=ids,
        context_id=_opt(ids),
        task_id=_opt(ids),
        role=st.sampled_from([v1.Role.USER, v1.Role.AGENT]),
        parts=st.lists(v1_parts(lossless), min_size=1, max_size=3),
        metadata=metadata,
        extensions=_opt_list(urls),
        reference_task_ids=_opt_list(ids),
    )


v1_states = st.sampled_from(list(v1.TaskState))


def v1_statuses(lossless: bool = True) -> st.SearchStrategy[v1.TaskStatus]:
    """1.0 task statuses."""
    return _builds(v1.TaskStatus, state=v1_states, message=_opt(v1_messages(lossless)), timestamp=timestamps)


def v1_artifacts(lossless: bool = True) -> st.SearchStrategy[v1.Artifact]:
    """1.0 artifacts."""
    return _builds(
        v1.Artifact,
        artifact_id=ids,
        name=_opt(texts),
        description=_opt(texts),
        parts=st.lists(v1_parts(lossless), min_size=1, max_size=3),
        metadata=metadata,
        extensions=_opt_list(urls),
    )


def v1_tasks(lossless: bool = True) -> st.SearchStrategy[v1.Task]:
    """1.0 tasks (a lossless contextId is absent or non-empty)."""
    return _builds(
        v1.Task,
        id=ids,
        context_id=_opt(ids) if lossless else _opt(st.text(max_size=4)),
        status=v1_statuses(lossless),
        artifacts=_opt_list(v1_artifacts(lossless)),
        history=_opt_list(v1_messages(lossless)),
        metadata=metadata,
    )


def v1_status_updates(lossless: bool = True) -> st.SearchStrategy[v1.TaskStatusUpdateEvent]:
    """1.0 status update events."""
    return _builds(
        v1.TaskStatusUpdateEvent, task_id=ids, context_id=ids, status=v1_statuses(lossless), metadata=metadata
    )


def v1_artifact_updates(lossless: bool = True) -> st.SearchStrategy[v1.TaskArtifactUpdateEvent]:
    """1.0 artifact update events."""
    return _builds(
        v1.TaskArtifactUpdateEvent,
        task_id=ids,
        context_id=ids,
        artifact=v1_artifacts(lossless),
        append=_opt(st.booleans()),
        last_chunk=_opt(st.booleans()),
        metadata=metadata,
    )


def v1_stream_responses(lossless: bool = True) -> st.SearchStrategy[v1.StreamResponse]:
    """1.0 stream responses, one member set."""
    return (
        _builds(v1.StreamResponse, task=v1_tasks(lossless))
        | _builds(v1.StreamResponse, message=v1_messages(lossless))
        | _builds(v1.StreamResponse, status_update=v1_status_updates(lossless))
        | _builds(v1.StreamResponse, artifact_update=v1_artifact_updates(lossless))
    )


def v1_send_message_responses(lossless: bool = True) -> st.SearchStrategy[v1.SendMessageResponse]:
    """1.0 SendMessage results."""
    return _builds(v1.SendMessageResponse, task=v1_tasks(lossless)) | _builds(
        v1.SendMessageResponse, message=v1_messages(lossless)
    )


v1_authentication = _builds(
    v1.AuthenticationInfo, scheme=st.sampled_from(["Bearer", "Basic"]), credentials=_opt(ids)
)


def v1_push_configs(
    lossless: bool = True, task_id: bool = True
) -> st.SearchStrategy[v1.TaskPushNotificationConfig]:
    """Flat 1.0 push configs; lossless ones have no tenant and a non-empty (or, inline, no) taskId."""
    return _builds(
        v1.TaskPushNotificationConfig,
        tenant=st.none() if lossless else _opt(ids),
        id=_opt(ids),
        task_id=(ids if task_id else st.none()) if lossless else _opt(st.text(max_size=4)),
        url=urls,
        token=_opt(ids),
        authentication=_opt(v1_authentication),
    )


def v1_send_requests(lossless: bool = True) -> st.SearchStrategy[v1.SendMessageRequest]:
    """1.0 SendMessage params."""
    configuration = _builds(
        v1.SendMessageConfiguration,
        accepted_output_modes=_opt_list(media_types),
        task_push_notification_config=_opt(v1_push_configs(lossless, task_id=False)),
        history_length=_opt(st.integers(min_value=0, max_value=50)),
        return_immediately=_opt(st.booleans()),
    )
    return _builds(
        v1.SendMessageRequest,
        tenant=st.none() if lossless else _opt(ids),
        message=v1_messages(lossless),
        configuration=_opt(configuration),
        metadata=metadata,
    )


# --- 0.3 ---------------------------------------------------------------------------------------------


def v0_3_parts() -> st.SearchStrategy[v0_3.Part]:
    """0.3 text, file and data parts."""
    names, media = _opt(ids), _opt(media_types)
    inline = _builds(v0_3.FileWithBytes, bytes=base64_text, name=names, mime_type=media)
    linked = _builds(v0_3.FileWithUri, uri=urls, name=names, mime_type=media)
    return (
        _builds(v0_3.TextPart, text=texts, metadata=metadata)
        | _builds(v0_3.FilePart, file=inline | linked, metadata=metadata)
        | _builds(v0_3.DataPart, data=json_objects, metadata=metadata)
    )


v0_3_messages = _builds(
    v0_3.Message,
    message_id=ids,
    context_id=_opt(ids),
    task_id=_opt(ids),
    role=st.sampled_from(list(v0_3.Role)),
    parts=st.lists(v0_3_parts(), min_size=1, max_size=3),
    metadata=metadata,
    extensions=_opt_list(urls),
    reference_task_ids=_opt_list(ids),
)
v0_3_states = st.sampled_from(list(v0_3.TaskState))
v0_3_statuses = _builds(v0_3.TaskStatus, state=v0_3_states, message=_opt(v0_3_messages), timestamp=timestamps)
v0_3_artifacts = _builds(
    v0_3.Artifact,
    artifact_id=ids,
    name=_opt(texts),
    description=_opt(texts),
    parts=st.lists(v0_3_parts(), min_size=1, max_size=3),
    metadata=metadata,
    extensions=_opt_list(urls),
)
v0_3_tasks = _builds(
    v0_3.Task,
    id=ids,
    context_id=st.just("") | ids,
    status=v0_3_statuses,
    history=_opt_list(v0_3_messages),
    artifacts=_opt_list(v0_3_artifacts),
    metadata=metadata,
)
v0_3_status_updates = _builds(
    v0_3.TaskStatusUpdateEvent,
    task_id=ids,
    context_id=ids,
    status=v0_3_statuses,
    final=st.booleans(),
    metadata=metadata,
)
v0_3_artifact_updates = _builds(
    v0_3.TaskArtifactUpdateEvent,
    task_id=ids,
    context_id=ids,
    artifact=v0_3_artifacts,
    append=_opt(st.booleans()),
    last_chunk=_opt(st.booleans()),
    metadata=metadata,
)
v0_3_stream_events = v0_3_tasks | v0_3_messages | v0_3_status_updates | v0_3_artifact_updates

v0_3_authentication = _builds(
    v0_3.PushNotificationAuthenticationInfo,
    schemes=st.sampled_from(["Bearer", "Basic"]).map(lambda s: [s]),
    credentials=_opt(ids),
)
v0_3_push_notification_configs = _builds(
    v0_3.PushNotificationConfig,
    id=_opt(ids),
    url=urls,
    token=_opt(ids),
    authentication=_opt(v0_3_authentication),
)
v0_3_push_configs = _builds(
    v0_3.TaskPushNotificationConfig,
    task_id=st.just("") | ids,
    push_notification_config=v0_3_push_notification_configs,
)
v0_3_send_params = _builds(
    v0_3.MessageSendParams,
    message=v0_3_messages,
    configuration=_opt(
        _builds(
            v0_3.MessageSendConfiguration,
            accepted_output_modes=_opt_list(media_types),
            history_length=_opt(st.integers(min_value=0, max_value=50)),
            push_notification_config=_opt(v0_3_push_notification_configs),
            blocking=_opt(st.booleans()),
        )
    ),
    metadata=metadata,
)


# --- agent cards -------------------------------------------------------------------------------------

scopes = st.lists(ids, max_size=3)
scheme_names = st.sampled_from(["bearer", "apikey", "oauth", "oidc", "mtls"])
_oauth_flows = st.fixed_dictionaries(
    {
        "clientCredentials": st.fixed_dictionaries(
            {"tokenUrl": urls, "scopes": st.dictionaries(ids, texts, max_size=2)}
        )
    }
)


def _with_optional(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


v0_3_security_schemes = st.one_of(
    _with_optional(
        {"type": st.just("apiKey"), "in": st.sampled_from(["header", "query", "cookie"]), "name": ids},
        {"description": texts},
    ),
    _with_optional(
        {"type": st.just("http"), "scheme": st.just("bearer")}, {"bearerFormat": ids, "description": texts}
    ),
    _with_optional(
        {"type": st.just("oauth2"), "flows": _oauth_flows}, {"oauth2MetadataUrl": urls, "description": texts}
    ),
    _with_optional({"type": st.just("openIdConnect"), "openIdConnectUrl": urls}, {"description": texts}),
    _with_optional({"type": st.just("mutualTLS")}, {"description": texts}),
)


def _one_of_member(member: str, body: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return body.map(lambda b: {member: b})


v1_security_schemes = st.one_of(
    _one_of_member(
        "apiKeySecurityScheme",
        _with_optional(
            {"location": st.sampled_from(["header", "query"]), "name": ids}, {"description": texts}
        ),
    ),
    _one_of_member(
        "httpAuthSecurityScheme", _with_optional({"scheme": st.just("bearer")}, {"bearerFormat": ids})
    ),
    _one_of_member(
        "oauth2SecurityScheme", _with_optional({"flows": _oauth_flows}, {"oauth2MetadataUrl": urls})
    ),
    _one_of_member("openIdConnectSecurityScheme", _with_optional({"openIdConnectUrl": urls}, {})),
    _one_of_member("mtlsSecurityScheme", _with_optional({}, {"description": texts})),
)
v0_3_security = st.lists(st.dictionaries(scheme_names, scopes, max_size=2), max_size=2)
v1_security = st.lists(
    st.dictionaries(scheme_names, scopes.map(lambda s: {"list": s}), max_size=2).map(
        lambda d: {"schemes": d}
    ),
    max_size=2,
)
v0_3_extensions = _builds(
    v0_3.AgentExtension,
    uri=urls,
    description=_opt(texts),
    required=_opt(st.booleans()),
    params=_opt(json_objects),
)
v1_extensions = _builds(
    v1.AgentExtension,
    uri=urls,
    description=_opt(texts),
    required=_opt(st.booleans()),
    params=_opt(json_objects),
)
_skill_fields = {"id": ids, "name": texts, "description": texts, "tags": st.lists(ids, max_size=3)}
_modes = {
    "examples": _opt_list(texts),
    "input_modes": _opt_list(media_types),
    "output_modes": _opt_list(media_types),
}
v0_3_skills = _builds(v0_3.AgentSkill, **_skill_fields, **_modes, security=_opt(v0_3_security))
v1_skills = _builds(v1.AgentSkill, **_skill_fields, **_modes, security_requirements=_opt(v1_security))
bindings = st.sampled_from(["JSONRPC", "GRPC", "HTTP+JSON"])
_card_fields = {
    "name": texts,
    "description": texts,
    "version": st.sampled_from(["1.0.0", "0.1"]),
    "documentation_url": _opt(urls),
    "icon_url": _opt(urls),
    "default_input_modes": st.lists(media_types, max_size=2),
    "default_output_modes": st.lists(media_types, max_size=2),
}


@st.composite
def v0_3_cards(draw: st.DrawFn) -> v0_3.AgentCard:
    """Canonical 0.3 cards: additionalInterfaces absent, or the main interface first plus others."""
    pairs = draw(st.lists(st.tuples(urls, bindings), min_size=1, max_size=3, unique=True))
    url, transport = pairs[0]
    additional = None
    if len(pairs) > 1:
        additional = [v0_3.AgentInterface(url=u, transport=t) for u, t in pairs]
    capabilities = v0_3.AgentCapabilities(
        streaming=draw(_opt(st.booleans())),
        push_notifications=draw(_opt(st.booleans())),
        extensions=draw(_opt_list(v0_3_extensions)),
    )
    return v0_3.AgentCard(
        **{k: draw(s) for k, s in _card_fields.items()},
        url=url,
        preferred_transport=transport,
        additional_interfaces=additional,
        provider=draw(_opt(_builds(v0_3.AgentProvider, organization=texts, url=urls))),
        capabilities=capabilities,
        security_schemes=draw(_opt(st.dictionaries(scheme_names, v0_3_security_schemes, max_size=3))),
        security=draw(_opt(v0_3_security)),
        skills=draw(st.lists(v0_3_skills, max_size=2)),
        supports_authenticated_extended_card=draw(_opt(st.booleans())),
        signatures=draw(
            _opt_list(
                _builds(v0_3.AgentCardSignature, protected=ids, signature=ids, header=_opt(json_objects))
            )
        ),
    )


@st.composite
def v1_cards(draw: st.DrawFn, lossless: bool = True) -> v1.AgentCard:
    """1.0 cards; lossless ones have only distinct 0.3 interfaces without tenant."""
    if lossless:
        pairs = draw(st.lists(st.tuples(urls, bindings), min_size=1, max_size=3, unique=True))
        interfaces = [v1.AgentInterface(url=u, protocol_binding=b, protocol_version="0.3") for u, b in pairs]
    else:
        interfaces = draw(
            st.lists(
                _builds(
                    v1.AgentInterface,
                    url=urls,
                    protocol_binding=bindings,
                    protocol_version=st.sampled_from(["1.0", "0.3"]),
                    tenant=_opt(ids),
                ),
                min_size=1,
                max_size=4,
            )
        )
    capabilities = v1.AgentCapabilities(
        streaming=draw(_opt(st.booleans())),
        push_notifications=draw(_opt(st.booleans())),
        extensions=draw(_opt_list(v1_extensions)),
        extended_agent_card=draw(_opt(st.booleans())),
    )
    return v1.AgentCard(
        **{k: draw(s) for k, s in _card_fields.items()},
        supported_interfaces=interfaces,
        provider=draw(_opt(_builds(v1.AgentProvider, organization=texts, url=urls))),
        capabilities=capabilities,
        security_schemes=draw(_opt(st.dictionaries(scheme_names, v1_security_schemes, max_size=3))),
        security_requirements=draw(_opt(v1_security)),
        skills=draw(st.lists(v1_skills, max_size=2)),
        signatures=draw(
            _opt_list(_builds(v1.AgentCardSignature, protected=ids, signature=ids, header=_opt(json_objects)))
        ),
    )
