"""Agent cards: build the 1.0 card from a template; render it for both versions, 1.0 or 0.3, with an ETag."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from a2a_gateway.errors import VersionNotSupported
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.card_translate import agent_card_for_both, agent_card_to_v0_3
from a2a_gateway.protocol.version import ProtocolVersion, negotiate

SECURITY_SCHEMES = {
    "bearer": {
        "httpAuthSecurityScheme": {
            "scheme": "bearer",
            "bearerFormat": "JWT access token, or a user key (nex_...)",
            "description": "Authorization: Bearer <token or key>",
        }
    },
    "apiKey": {
        "apiKeySecurityScheme": {
            "location": "header",
            "name": "X-API-Key",
            "description": "A user key (nex_...)",
        }
    },
}


# A kit agent behind the gateway: calls come relayed, with the gateway's caller assertion; its owner (and
# any allowlisted user) may also call directly with a gateway credential, which the agent verifies.
KIT_SECURITY_SCHEMES = {
    "gatewayAssertion": {
        "apiKeySecurityScheme": {
            "location": "header",
            "name": "A2A-Caller-Assertion",
            "description": "The signed caller assertion the gateway adds to every call it relays",
        }
    },
    "bearer": {
        "httpAuthSecurityScheme": {
            "scheme": "bearer",
            "bearerFormat": "The gateway's JWT access token, or a gateway user key (nex_...)",
            "description": "Direct calls: Authorization: Bearer <gateway token or key>",
        }
    },
}


@dataclass(frozen=True, slots=True)
class CardSecurity:
    """The security schemes a card declares and the requirements any one of which a caller meets."""

    schemes: dict[str, Any]
    requirements: list[dict[str, Any]]


def kit_security(require_gateway: bool) -> CardSecurity:
    """A kit agent's card security: the gateway's assertion or a gateway credential; anonymous too unless
    the agent requires the gateway."""
    required: list[dict[str, Any]] = [
        {"schemes": {"gatewayAssertion": {"list": []}}},
        {"schemes": {"bearer": {"list": []}}},
    ]
    return CardSecurity(KIT_SECURITY_SCHEMES, required if require_gateway else [*required, {"schemes": {}}])


def security_requirements(anonymous_allowed: bool) -> list[dict[str, Any]]:
    """Either scheme satisfies the card; an empty requirement says anonymous calls are accepted too."""
    required: list[dict[str, Any]] = [
        {"schemes": {"bearer": {"list": []}}},
        {"schemes": {"apiKey": {"list": []}}},
    ]
    return [*required, {"schemes": {}}] if anonymous_allowed else required


def build_card(
    template: dict[str, Any],
    rpc_url: str,
    skills: list[v1.AgentSkill],
    capabilities: v1.AgentCapabilities,
    anonymous_allowed: bool = True,
    *,
    security: CardSecurity | None = None,
) -> v1.AgentCard:
    """The 1.0 card: the template's identity, one JSON-RPC interface per version, real capabilities.

    Security is the gateway's (bearer token or key, anonymous when allowed) unless ``security`` says else.
    """
    declared = security or CardSecurity(SECURITY_SCHEMES, security_requirements(anonymous_allowed))
    skip = {"supportedInterfaces", "capabilities", "skills", "securitySchemes", "securityRequirements"}
    fields = {k: v for k, v in template.items() if k not in skip}
    card = v1.AgentCard.model_validate(
        {
            **fields,
            "supportedInterfaces": [
                {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
                {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
            ],
            "capabilities": capabilities.wire(),
            "securitySchemes": declared.schemes,
            "securityRequirements": declared.requirements,
            "skills": [s.wire() for s in skills] + list(template.get("skills", [])),
        }
    )
    return card


class CardForm(StrEnum):
    """Which rendering of a card a reader gets."""

    BOTH = "both"  # no version named: the 1.0 card with the 0.3 fields added, which either version reads
    V1_0 = "1.0"  # pure 1.0, what strict 1.0 clients validate
    V0_3 = "0.3"  # pure 0.3


def card_form(hint: str | None) -> CardForm:
    """The form for an ``A2A-Version`` hint: none -> both, 1.x -> 1.0, 0.3 -> 0.3, anything else -> both.

    A card is how a client learns what the agent speaks, so an unknown version gets the card that most
    readers understand rather than an error.
    """
    if hint is None or not hint.strip():
        return CardForm.BOTH
    try:
        version = negotiate(hint)
    except VersionNotSupported:
        return CardForm.BOTH
    return CardForm.V1_0 if version is ProtocolVersion.V1_0 else CardForm.V0_3


@dataclass(frozen=True, slots=True)
class RenderedCard:
    """A card's bytes in one form, with its ETag."""

    body: bytes
    etag: str


def render(card: v1.AgentCard, form: CardForm) -> RenderedCard:
    """Serialize once; the ETag is a strong hash of the exact bytes."""
    if form is CardForm.BOTH:
        doc = agent_card_for_both(card)
    else:
        doc = card.wire() if form is CardForm.V1_0 else agent_card_to_v0_3(card).wire()
    body = orjson.dumps(doc)
    return RenderedCard(body=body, etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"')
