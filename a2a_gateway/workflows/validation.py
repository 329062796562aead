"""The shape rules of a workflow body (seed 002's fields), each error naming the step and field it is about.

Only what the body alone can tell is checked here; that agents exist, offer the skill and that the
caller can afford a run is the service's part (it needs the registry and the ledger).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from a2a_gateway.errors import InvalidParams
from a2a_gateway.workflows import refs
from a2a_gateway.workflows.models import DEFAULT_BACKOFF_MS, DEFAULT_TIMEOUT_S, RetryPolicy, StepSpec

MAX_STEPS = 20
MAX_NAME = 100
MAX_DESCRIPTION = 2000
MAX_ID = 200
MAX_INPUT_BYTES = 64 * 1024
RETRIES = (0, 5)
BACKOFF_MS = (100, 60_000)
TIMEOUT_S = (10, 3600)


@dataclass(frozen=True, slots=True)
class Draft:
    """A workflow body that passed the shape rules; prices are filled in by the service."""

    name: str
    description: str
    steps: tuple[StepSpec, ...]


def invalid(field: str, description: str) -> InvalidParams:
    """A 400 / -32602 naming the field at fault."""
    return InvalidParams(f"{field}: {description}", violations=[{"field": field, "description": description}])


def parse(body: object) -> Draft:
    """Check a POST /api/v1/workflows body; InvalidParams naming the first field at fault."""
    if not isinstance(body, Mapping):
        raise invalid("body", "must be a JSON object")
    name = _text(body, "name", "name", required=True, limit=MAX_NAME)
    description = _text(body, "description", "description", required=False, limit=MAX_DESCRIPTION)
    raw_steps = body.get("steps")
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_STEPS:
        raise invalid("steps", f"a list of 1 to {MAX_STEPS} steps")
    steps = tuple(_step(raw, i) for i, raw in enumerate(raw_steps))
    return Draft(name=name, description=description, steps=steps)


def input_override(raw: object, steps: int) -> dict[str, dict[str, Any]]:
    """The optional ``inputs`` of an execute call: ``{"<step index>": {...}}``, merged over each step's
    own input for that run."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise invalid("inputs", "an object of step index to input object")
    out: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        where = f"inputs.{str(key)[:10]}"
        if not isinstance(key, str) or not key.isdigit() or len(key) > 3 or int(key) >= steps:
            raise invalid(where, f"a step index 0..{steps - 1}")
        if not isinstance(value, Mapping):
            raise invalid(where, "an input object")
        _size(dict(value), where)
        out[str(int(key))] = dict(value)
    return out


def _step(raw: object, i: int) -> StepSpec:
    at = f"steps[{i}]"
    if not isinstance(raw, Mapping):
        raise invalid(at, "must be an object")
    name = _text(raw, "name", f"{at}.name", required=True, limit=MAX_NAME)
    agent_id = _text(raw, "agentId", f"{at}.agentId", required=True, limit=MAX_ID)
    skill_id = _text(raw, "skillId", f"{at}.skillId", required=True, limit=MAX_ID)
    given = raw.get("input", {})
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise invalid(f"{at}.input", "must be an object")
    step_input = dict(given)
    _size(step_input, f"{at}.input")
    depends = raw.get("dependsOn", [])
    if depends is None:
        depends = []
    if not isinstance(depends, list) or len(depends) > MAX_STEPS:
        raise invalid(f"{at}.dependsOn", "a list of earlier step indices")
    seen: list[int] = []
    for d in depends:
        # Earlier steps only: this alone keeps the graph acyclic.
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < i:
            raise invalid(f"{at}.dependsOn", f"{_show(d)} is not an earlier step's index (0..{i - 1})")
        if d in seen:
            raise invalid(f"{at}.dependsOn", f"step {d} is listed twice")
        seen.append(d)
    timeout = _int(raw, "timeout", f"{at}.timeout", DEFAULT_TIMEOUT_S, bounds=TIMEOUT_S, unit="seconds")
    policy = raw.get("retryPolicy", {})
    if policy is None:
        policy = {}
    if not isinstance(policy, Mapping):
        raise invalid(f"{at}.retryPolicy", "must be an object")
    retries = _int(policy, "maxRetries", f"{at}.retryPolicy.maxRetries", 0, bounds=RETRIES, unit="retries")
    backoff = _int(
        policy, "backoffMs", f"{at}.retryPolicy.backoffMs", DEFAULT_BACKOFF_MS, bounds=BACKOFF_MS, unit="ms"
    )
    for path, ref in refs.references(step_input):
        where = f"{at}.input{path}"
        try:
            target = refs.parse(ref)
        except ValueError as exc:
            raise invalid(where, str(exc)) from None
        if target.step not in seen:
            raise invalid(where, f"refers to step {target.step}, which is not in dependsOn")
    return StepSpec(
        name=name,
        agent_id=agent_id,
        skill_id=skill_id,
        input=step_input,
        depends_on=tuple(seen),
        timeout_s=timeout,
        retry=RetryPolicy(max_retries=retries, backoff_ms=backoff),
    )


def _text(raw: Mapping[str, Any], key: str, field: str, *, required: bool, limit: int) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise invalid(field, "a non-empty string" if required else "a string")
    if len(value) > limit:
        raise invalid(field, f"at most {limit} characters")
    return value.strip() if required else value


def _int(
    raw: Mapping[str, Any], key: str, field: str, default: int, *, bounds: tuple[int, int], unit: str
) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(field, f"an integer from {low} to {high} {unit}")
    return value


def _size(value: dict[str, Any], field: str) -> None:
    if len(refs.dumps(value)) > MAX_INPUT_BYTES:
        raise invalid(field, f"larger than {MAX_INPUT_BYTES} bytes")


def _show(value: object) -> str:
    return repr(value)[:20]
