"""Agent cards: build the 1.0 card from a template, render it in 1.0 or 0.3 form with an ETag."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from a2a_gateway.protocol import v1
from a2a_gateway.protocol.card_translate import agent_card_to_v0_3
from a2a_gateway.protocol.version import ProtocolVersion

SECURITY_SCHEMES = {
    "bearer": {
        "httpAuthSecurityScheme": {
            "scheme": "bearer",
            "bearerFormat": "JWT access token, or an API key (nex_..., nxk_...)",
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
) -> v1.AgentCard:
    """The 1.0 card: the template's identity, one JSON-RPC interface per version, real capabilities."""
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
            "securitySchemes": SECURITY_SCHEMES,
            "securityRequirements": security_requirements(anonymous_allowed),
            "skills": [s.wire() for s in skills] + list(template.get("skills", [])),
        }
    )
    return card


@dataclass(frozen=True, slots=True)
class RenderedCard:
    """A card's bytes in one protocol version, with its ETag."""

    body: bytes
    etag: str


def render(card: v1.AgentCard, version: ProtocolVersion) -> RenderedCard:
    """Serialize once; the ETag is a strong hash of the exact bytes."""
    doc = card.wire() if version is ProtocolVersion.V1_0 else agent_card_to_v0_3(card).wire()
    body = orjson.dumps(doc)
    return RenderedCard(body=body, etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"')
