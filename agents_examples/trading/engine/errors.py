"""The engine's refusals, each with the HTTP status and the code of the seed's error body.

The REST API renders one as ``{"error": message, "code": code}`` (seed ``000_…``); the A2A skills end
their task with ``"CODE: message"``. Messages never carry a credential.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """A refusal: ``status`` (HTTP), ``code`` (stable, upper snake case), ``message`` (for people)."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def not_found(what: str, code: str) -> EngineError:
    """404: the resource does not exist, or belongs to someone else (never said which)."""
    return EngineError(404, code, f"{what} not found")


def invalid(message: str, code: str = "VALIDATION_ERROR", **details: Any) -> EngineError:
    """400: the request itself is wrong."""
    return EngineError(400, code, message, **details)


def conflict(message: str, code: str, **details: Any) -> EngineError:
    """409: the request clashes with the current state."""
    return EngineError(409, code, message, **details)
