"""What routing knows about an agent it calls."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where and how to call an agent: its JSON-RPC URL, protocol version, and whether it streams."""

    url: str
    version: str
    streams: bool = True
