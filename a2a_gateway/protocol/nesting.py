"""How deep a decoded JSON value may nest: checked once, at parse time, for every body the gateway stores."""

from __future__ import annotations

from collections.abc import Iterable

from a2a_gateway.errors import InvalidParams

# How many objects and arrays may nest inside JSON-RPC "params" (params itself counts as one) or a REST
# body. Deeper values would be stored and re-serialised with every event of a task (and past about a
# thousand levels no serialiser copes), so they are refused before any work starts.
MAX_DEPTH = 32


def _path(keys: tuple[str | int, ...], root: str) -> str:
    text = root
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key[:40]}" if text else key[:40])
    return text[:300]


def check_nesting(value: object, raw: bytes, root: str = "params", limit: int = MAX_DEPTH) -> None:
    """Raise InvalidParams naming the path where ``value`` nests more than ``limit`` containers deep.

    ``raw`` is the body ``value`` was decoded from: a body with no more brackets than ``limit`` cannot be
    too deep, so the common small request costs two byte counts and no walk.
    """
    if raw.count(b"{") + raw.count(b"[") <= limit or not isinstance(value, dict | list):
        return
    # An explicit stack, not recursion: the input decides the depth.
    stack: list[tuple[object, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, keys = stack.pop()
        if depth > limit:
            where = _path(keys, root) or "(root)"
            raise InvalidParams(
                f"Invalid params: {where} nests deeper than {limit} levels",
                violations=[{"field": where, "description": f"nested deeper than {limit} levels"}],
            )
        children: Iterable[tuple[str | int, object]] = (
            node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        )
        for key, child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, (*keys, key)))
