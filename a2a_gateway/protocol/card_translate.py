"""Agent card translation between A2A 0.3 and 1.0 (reference §4), total and pure.

Lossy corners:

* 1.0 ``supportedInterfaces`` -> 0.3: ``url``/``preferredTransport`` come from the first interface whose
  protocolVersion is 0.3 (else the first); ``additionalInterfaces`` lists every interface of that same
  protocol version, the chosen one first, or is absent when there is only one. Interfaces of other versions,
  ``tenant`` and the order among them are dropped. ``protocolVersion`` is always ``"0.3.0"``.
* 0.3 -> 1.0: the main url/transport becomes the first interface and each additional interface that differs
  from it follows, all with protocolVersion ``"0.3"``. So a 0.3 card round-trips exactly only when
  ``additionalInterfaces`` is absent or lists the main interface first and at least one other; a 0.3
  ``protocolVersion`` other than ``"0.3.0"`` comes back as ``"0.3.0"``.
* ``capabilities.stateTransitionHistory`` has no 1.0 field and is dropped.
* Security requirements: a 1.0 scheme entry without a ``list`` comes back as ``{"list": []}``.
* Security schemes of an unrecognised shape are copied unchanged; snake_case keys come back camelCase.
* ``signatures`` are copied, but a signature over one rendering does not verify the other.

``agent_card_for_both`` is the card for a reader whose version is unknown (no ``A2A-Version``): the 1.0
card with the 0.3 fields merged in where 1.0 has no field of that name, as the official a2a-sdk serves
it in compatibility mode. Strict 1.0 schemas refuse it (``securitySchemes`` entries carry both shapes),
so it is never served to a reader that named 1.0.
"""

from __future__ import annotations

from typing import Any

from pydantic.alias_generators import to_camel

from a2a_gateway.protocol import v0_3, v1

_SCHEME_MEMBER_BY_TYPE = {
    "apiKey": "apiKeySecurityScheme",
    "http": "httpAuthSecurityScheme",
    "oauth2": "oauth2SecurityScheme",
    "openIdConnect": "openIdConnectSecurityScheme",
    "mutualTLS": "mtlsSecurityScheme",
}
_SCHEME_TYPE_BY_MEMBER = {member: kind for kind, member in _SCHEME_MEMBER_BY_TYPE.items()}
V0_3 = "0.3"


def _camel(key: str) -> str:
    return to_camel(key) if "_" in key else key


def _camel_keys(mapping: dict[str, Any]) -> dict[str, Any]:
    # Security dicts are untyped in both models, so ProtoJSON's snake_case spelling is normalised here.
    return {_camel(k): v for k, v in mapping.items()}


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def security_scheme_to_v1(scheme: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI-style 0.3 scheme ({"type": "http", ...}) to the 1.0 oneof ({"httpAuthSecurityScheme": ...})."""
    fields = _camel_keys(scheme)
    kind = fields.pop("type", None)
    member = _SCHEME_MEMBER_BY_TYPE.get(kind) if isinstance(kind, str) else None
    if member is None:
        return dict(scheme)
    if "in" in fields:
        fields["location"] = fields.pop("in")
    return {member: fields}


def security_scheme_to_v0_3(scheme: dict[str, Any]) -> dict[str, Any]:
    """1.0 oneof scheme ({"apiKeySecurityScheme": ...}) to the OpenAPI-style 0.3 one ({"type": "apiKey"})."""
    if len(scheme) == 1:
        ((member, body),) = scheme.items()
        kind = _SCHEME_TYPE_BY_MEMBER.get(_camel(member))
        if kind is not None and isinstance(body, dict):
            fields = _camel_keys(body)
            if "location" in fields:
                fields["in"] = fields.pop("location")
            return {"type": kind, **fields}
    return dict(scheme)


def _scopes(value: object) -> list[str]:
    scopes = value.get("list") if isinstance(value, dict) else value
    return [str(s) for s in scopes] if isinstance(scopes, list) else []


def security_requirements_to_v1(security: list[dict[str, list[str]]]) -> list[dict[str, Any]]:
    """0.3 ``[{"x": [scopes]}]`` to 1.0 ``[{"schemes": {"x": {"list": [scopes]}}}]``."""
    return [{"schemes": {name: {"list": list(scopes)} for name, scopes in req.items()}} for req in security]


def security_requirements_to_v0_3(requirements: list[dict[str, Any]]) -> list[dict[str, list[str]]]:
    """1.0 ``[{"schemes": {"x": {"list": [scopes]}}}]`` to 0.3 ``[{"x": [scopes]}]``."""
    result: list[dict[str, list[str]]] = []
    for req in requirements:
        schemes = req.get("schemes")
        result.append({name: _scopes(v) for name, v in schemes.items()} if isinstance(schemes, dict) else {})
    return result


def _skill_to_v1(skill: v0_3.AgentSkill) -> v1.AgentSkill:
    return v1.AgentSkill(
        id=skill.id,
        name=skill.name,
        description=skill.description,
        tags=list(skill.tags),
        examples=skill.examples,
        input_modes=skill.input_modes,
        output_modes=skill.output_modes,
        security_requirements=None if skill.security is None else security_requirements_to_v1(skill.security),
    )


def _skill_to_v0_3(skill: v1.AgentSkill) -> v0_3.AgentSkill:
    reqs = skill.security_requirements
    return v0_3.AgentSkill(
        id=skill.id,
        name=skill.name,
        description=skill.description,
        tags=list(skill.tags),
        examples=skill.examples,
        input_modes=skill.input_modes,
        output_modes=skill.output_modes,
        security=None if reqs is None else security_requirements_to_v0_3(reqs),
    )


def _interfaces_to_v1(card: v0_3.AgentCard) -> list[v1.AgentInterface]:
    main = (card.url, card.preferred_transport)
    pairs = [main] + [
        (i.url, i.transport) for i in card.additional_interfaces or [] if (i.url, i.transport) != main
    ]
    return [
        v1.AgentInterface(url=url, protocol_binding=binding, protocol_version=V0_3) for url, binding in pairs
    ]


def agent_card_to_v1(card: v0_3.AgentCard) -> v1.AgentCard:
    """A 0.3 agent card to its 1.0 form."""
    caps = card.capabilities
    extensions = None if caps.extensions is None else list(caps.extensions)
    schemes = card.security_schemes
    return v1.AgentCard(
        name=card.name,
        description=card.description,
        supported_interfaces=_interfaces_to_v1(card),
        provider=card.provider,
        version=card.version,
        documentation_url=card.documentation_url,
        capabilities=v1.AgentCapabilities(
            streaming=caps.streaming,
            push_notifications=caps.push_notifications,
            extensions=extensions,
            extended_agent_card=card.supports_authenticated_extended_card,
        ),
        security_schemes=None
        if schemes is None
        else {k: security_scheme_to_v1(s) for k, s in schemes.items()},
        security_requirements=None if card.security is None else security_requirements_to_v1(card.security),
        default_input_modes=list(card.default_input_modes),
        default_output_modes=list(card.default_output_modes),
        skills=[_skill_to_v1(s) for s in card.skills],
        signatures=None if card.signatures is None else list(card.signatures),
        icon_url=card.icon_url,
    )


def _has_v0_3_interface(card: v1.AgentCard) -> bool:
    return any(_major_minor(i.protocol_version) == V0_3 for i in card.supported_interfaces)


def _merge_missing(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Add ``extra``'s fields that ``into`` lacks, recursing into objects and into lists item by item."""
    for key, value in extra.items():
        present = into.get(key)
        if key not in into:
            into[key] = value
        elif isinstance(value, dict) and isinstance(present, dict):
            _merge_missing(present, value)
        elif isinstance(value, list) and isinstance(present, list):
            for mine, theirs in zip(present, value, strict=False):
                if isinstance(mine, dict) and isinstance(theirs, dict):
                    _merge_missing(mine, theirs)
    return into


def agent_card_for_both(card: v1.AgentCard) -> dict[str, Any]:
    """The card both versions read: the 1.0 wire form plus the 0.3 fields (``url``, ``protocolVersion``,
    ``preferredTransport``, ...); the pure 1.0 form when the card has no 0.3 interface to point at."""
    doc = card.wire()
    if not _has_v0_3_interface(card):
        return doc
    legacy = agent_card_to_v0_3(card).wire()
    if not legacy.get("supportsAuthenticatedExtendedCard"):
        legacy.pop("supportsAuthenticatedExtendedCard", None)
    return _merge_missing(doc, legacy)


def agent_card_to_v0_3(card: v1.AgentCard) -> v0_3.AgentCard:
    """A 1.0 agent card to its 0.3 form, pointing at its 0.3 interface when it has one."""
    interfaces = card.supported_interfaces
    chosen = next((i for i in interfaces if _major_minor(i.protocol_version) == V0_3), interfaces[0])
    version = _major_minor(chosen.protocol_version)
    same = [i for i in interfaces if _major_minor(i.protocol_version) == version]
    additional = [v0_3.AgentInterface(url=i.url, transport=i.protocol_binding) for i in same]
    caps = card.capabilities
    extensions = None if caps.extensions is None else list(caps.extensions)
    schemes = card.security_schemes
    reqs = card.security_requirements
    return v0_3.AgentCard(
        protocol_version=v0_3.PROTOCOL_VERSION,
        name=card.name,
        description=card.description,
        url=chosen.url,
        preferred_transport=chosen.protocol_binding,
        additional_interfaces=additional if len(additional) > 1 else None,
        icon_url=card.icon_url,
        provider=card.provider,
        version=card.version,
        documentation_url=card.documentation_url,
        capabilities=v0_3.AgentCapabilities(
            streaming=caps.streaming, push_notifications=caps.push_notifications, extensions=extensions
        ),
        security_schemes=None
        if schemes is None
        else {k: security_scheme_to_v0_3(s) for k, s in schemes.items()},
        security=None if reqs is None else security_requirements_to_v0_3(reqs),
        default_input_modes=list(card.default_input_modes),
        default_output_modes=list(card.default_output_modes),
        skills=[_skill_to_v0_3(s) for s in card.skills],
        supports_authenticated_extended_card=caps.extended_agent_card,
        signatures=None if card.signatures is None else list(card.signatures),
    )
