"""Card templates: the gateway's own (from well-known/) and one made from a kit agent's definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from a2a_gateway.agent import AgentDefinition

CARD_TEMPLATE = Path(__file__).resolve().parents[2] / "well-known" / "agent-card.json"


def load_card_template(path: Path = CARD_TEMPLATE) -> dict[str, Any]:
    """The gateway's card template (identity fields; interfaces and capabilities are filled in)."""
    loaded = orjson.loads(path.read_bytes())
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return loaded


def agent_template(agent: AgentDefinition) -> dict[str, Any]:
    """A card template for an agent built with the kit, from its definition."""
    template: dict[str, Any] = {
        "name": agent.name,
        "description": agent.description,
        "version": agent.version,
        "defaultInputModes": agent.default_input_modes,
        "defaultOutputModes": agent.default_output_modes,
    }
    if agent.provider is not None:
        template["provider"] = agent.provider.wire()
    if agent.documentation_url:
        template["documentationUrl"] = agent.documentation_url
    return template
