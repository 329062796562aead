"""What a card says callers must present: the gateway's schemes, and a kit agent's behind the gateway."""

from __future__ import annotations

import orjson

from a2a_gateway.protocol import v1
from a2a_gateway.protocol.card import CardForm, build_card, kit_security, render

TEMPLATE = {
    "name": "A",
    "description": "d",
    "version": "1",
    "defaultInputModes": [],
    "defaultOutputModes": [],
}


def card(**options: object) -> dict[str, object]:
    built = build_card(TEMPLATE, "https://a.example/a2a", [], v1.AgentCapabilities(), **options)  # type: ignore[arg-type]
    doc: dict[str, object] = orjson.loads(render(built, CardForm.V1_0).body)
    return doc


def test_a_kit_agent_that_requires_the_gateway_declares_the_assertion_and_no_anonymous_access() -> None:
    required = card(security=kit_security(require_gateway=True))
    schemes = required["securitySchemes"]
    assert isinstance(schemes, dict)
    assert schemes["gatewayAssertion"]["apiKeySecurityScheme"]["name"] == "A2A-Caller-Assertion"
    assert "bearer" in schemes and "apiKey" not in schemes
    assert {"schemes": {}} not in required["securityRequirements"]  # type: ignore[operator]
    optional = card(security=kit_security(require_gateway=False))
    assert {"schemes": {}} in optional["securityRequirements"]  # type: ignore[operator]


def test_the_gateways_card_offers_a_token_or_a_user_key_and_anonymous_only_when_open() -> None:
    closed = card(anonymous_allowed=False)
    assert set(closed["securitySchemes"]) == {"bearer", "apiKey"}  # type: ignore[arg-type]
    assert {"schemes": {}} not in closed["securityRequirements"]  # type: ignore[operator]
    assert {"schemes": {}} in card(anonymous_allowed=True)["securityRequirements"]  # type: ignore[operator]
    legacy = orjson_of(build_card(TEMPLATE, "https://a.example/a2a", [], v1.AgentCapabilities()))
    assert legacy["securitySchemes"]["bearer"]["type"] == "http"  # the 0.3 rendering says the same


def orjson_of(built: v1.AgentCard) -> dict[str, dict[str, dict[str, str]]]:
    doc: dict[str, dict[str, dict[str, str]]] = orjson.loads(render(built, CardForm.V0_3).body)
    return doc
