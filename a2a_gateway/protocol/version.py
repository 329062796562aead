"""A2A version negotiation: which protocol a request speaks."""

from __future__ import annotations

from enum import StrEnum

from a2a_gateway.errors import VersionNotSupported


class ProtocolVersion(StrEnum):
    """The protocol versions the gateway serves."""

    V0_3 = "0.3"
    V1_0 = "1.0"


HEADER = "A2A-Version"


def negotiate(requested: str | None) -> ProtocolVersion:
    """Pick the version for a request; missing or empty means 0.3, only Major.Minor is compared."""
    if requested is None or not requested.strip():
        return ProtocolVersion.V0_3
    parts = requested.strip().split(".")
    major = parts[0]
    minor = parts[1] if len(parts) > 1 else "0"
    if major == "1":
        return ProtocolVersion.V1_0
    if major == "0" and minor == "3":
        return ProtocolVersion.V0_3
    raise VersionNotSupported(
        "A2A version is not supported; this endpoint serves 1.0 and 0.3",
        metadata={"requestedVersion": requested[:32], "supportedVersions": "1.0,0.3"},
    )
