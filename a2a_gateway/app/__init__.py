"""Composition root: the gateway's app and a kit agent's app, built from shared building blocks."""

from a2a_gateway.app.building import build_auth
from a2a_gateway.app.cards import agent_template, load_card_template
from a2a_gateway.app.gateway import create_gateway_app
from a2a_gateway.app.identity import GatewayAuth
from a2a_gateway.app.kit import create_agent_app

__all__ = [
    "GatewayAuth",
    "agent_template",
    "build_auth",
    "create_agent_app",
    "create_gateway_app",
    "load_card_template",
]
