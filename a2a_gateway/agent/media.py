"""Media-type matching for input and output modes (``*/*`` and ``type/*`` wildcards)."""

from __future__ import annotations

from collections.abc import Iterable


def _matches(offered: str, wanted: str) -> bool:
    offered_type, _, offered_sub = offered.split(";", maxsplit=1)[0].strip().lower().partition("/")
    wanted_type, _, wanted_sub = wanted.split(";", maxsplit=1)[0].strip().lower().partition("/")
    if "*" in (offered_type, wanted_type):
        return True
    return offered_type == wanted_type and (offered_sub == wanted_sub or "*" in (offered_sub, wanted_sub))


def overlap(offered: Iterable[str], wanted: Iterable[str]) -> bool:
    """True when any offered media type satisfies any wanted one."""
    wanted = list(wanted)
    return any(_matches(o, w) for o in offered for w in wanted)
