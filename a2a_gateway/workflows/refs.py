"""References from a step's input to the outputs of the steps it depends on.

An object that is exactly ``{"$ref": "<path>"}``, anywhere in a step's input, is replaced by the value
the path names once the referenced step has completed:

- ``steps.N.artifacts``: the list of step N's artifacts (A2A 1.0 JSON: ``artifactId``, ``name``, ``parts``);
- ``steps.N.artifacts.K``: its artifact K (0-based);
- ``steps.N.output``: its output value: the data of the first data part among its artifacts, or else the
  text of all its text parts joined by newlines;
- ``steps.N.text``: the text of all its text parts joined by newlines.

``#`` and a JSON pointer (RFC 6901) after ``output`` or ``artifacts.K`` pick a field inside: inside the
output value, or inside artifact K's first data part (``steps.0.artifacts.0#/quote/price``). A step may
refer only to the steps it lists in ``dependsOn``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REF = "$ref"
_MAX_REF = 300


class Unresolvable(ValueError):
    """A reference whose target is not in the referenced step's output."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a reference names: ``what`` is artifacts, artifact, output or text."""

    step: int
    what: str
    artifact: int | None = None
    pointer: str | None = None


def dumps(value: object) -> str:
    """Compact JSON (sizes are measured on it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def references(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every reference inside ``value`` as (where, reference text); where looks like ``.a.b[0]``."""
    # An explicit stack: the input decides the depth (already bounded by the body's nesting limit).
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, Mapping):
            if _is_ref(node):
                yield at, node[REF]
                continue
            for key, child in node.items():
                stack.append((child, f"{at}.{str(key)[:40]}"))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                stack.append((child, f"{at}[{i}]"))


def parse(text: object) -> Target:
    """The target of a reference; ValueError saying what is wrong with it."""
    if not isinstance(text, str) or not text or len(text) > _MAX_REF:
        raise ValueError(f"a $ref is a string of at most {_MAX_REF} characters")
    head, sep, pointer = text.partition("#")
    if sep and not (pointer == "" or pointer.startswith("/")):
        raise ValueError(f"{text[:60]!r}: what follows '#' is a JSON pointer starting with '/'")
    parts = head.split(".")
    if len(parts) < 3 or parts[0] != "steps" or not _index(parts[1]):
        raise ValueError(f"{text[:60]!r} is not steps.<index>.(artifacts[.<index>]|output|text)")
    step = int(parts[1])
    rest = parts[2:]
    if rest == ["artifacts"] and not sep:
        return Target(step, "artifacts")
    if len(rest) == 2 and rest[0] == "artifacts" and _index(rest[1]):
        return Target(step, "artifact", int(rest[1]), pointer if sep else None)
    if rest == ["output"]:
        return Target(step, "output", None, pointer if sep else None)
    if rest == ["text"] and not sep:
        return Target(step, "text")
    raise ValueError(f"{text[:60]!r} is not steps.<index>.(artifacts[.<index>]|output|text)")


def resolve(value: Any, outputs: Mapping[int, Sequence[Mapping[str, Any]]]) -> Any:
    """``value`` with every reference replaced from ``outputs`` (artifacts by step index); raises
    Unresolvable naming the first reference that points at nothing."""
    if isinstance(value, Mapping):
        if _is_ref(value):
            return _lookup(parse(value[REF]), value[REF], outputs)
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return value


def output_value(artifacts: Sequence[Mapping[str, Any]]) -> Any:
    """A step's output value: its first data part's data, else all its text (None when it has neither)."""
    for artifact in artifacts:
        for part in artifact.get("parts", ()):
            if "data" in part:
                return part["data"]
    text = text_of(artifacts)
    return text if text else None


def text_of(artifacts: Sequence[Mapping[str, Any]]) -> str:
    """The text parts of ``artifacts``, in order, joined by newlines."""
    return "\n".join(
        part["text"] for a in artifacts for part in a.get("parts", ()) if isinstance(part.get("text"), str)
    )


def _lookup(target: Target, text: str, outputs: Mapping[int, Sequence[Mapping[str, Any]]]) -> Any:
    artifacts = outputs.get(target.step)
    if artifacts is None:
        raise Unresolvable(f"{text[:60]!r}: step {target.step} has no output")
    if target.what == "artifacts":
        return [dict(a) for a in artifacts]
    if target.what == "text":
        return text_of(artifacts)
    if target.what == "output":
        found = output_value(artifacts)
    else:
        assert target.artifact is not None
        if target.artifact >= len(artifacts):
            raise Unresolvable(f"{text[:60]!r}: step {target.step} has {len(artifacts)} artifacts")
        artifact = artifacts[target.artifact]
        if target.pointer is None:
            return dict(artifact)
        found = next((p["data"] for p in artifact.get("parts", ()) if "data" in p), None)
    if target.pointer is None:
        return found
    return _point(found, target.pointer, text)


def _point(doc: Any, pointer: str, text: str) -> Any:
    node = doc
    for raw in pointer.split("/")[1:] if pointer else ():
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and _index(key) and int(key) < len(node):
            node = node[int(key)]
        else:
            raise Unresolvable(f"{text[:60]!r}: nothing at {pointer[:60]!r} in the step's output")
    return node


def _is_ref(node: Mapping[Any, Any]) -> bool:
    return len(node) == 1 and REF in node


def _index(text: str) -> bool:
    return text.isdigit() and len(text) <= 4 and (text == "0" or not text.startswith("0"))
