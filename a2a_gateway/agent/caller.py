"""Who a call is made for, as a skill sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ASSERTION_HEADER: Final = "A2A-Caller-Assertion"


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller of a task, handed to skills as ``ctx.caller`` so they can scope what they return.

    On a kit agent behind the gateway, ``via_gateway`` is True when the call carried a verified caller
    assertion: ``user`` is then the gateway user the call is made for, ``task`` the gateway's task id and
    ``price`` the credits the gateway holds for it. On the gateway itself, ``user`` is the authenticated
    caller. ``user`` is None for an anonymous caller.
    """

    user: str | None = None
    via_gateway: bool = False
    task: str | None = None
    skill: str | None = None
    key_kind: str | None = None  # "session", "user", "agent", "live", "sandbox", or None when anonymous
    key_id: str | None = None
    price: int | None = None
    # On the gateway only: the daily spend cap (credits) of the nex_ key the call came with, if it has one.
    spend_cap: int | None = None
    # On the gateway only, never from a request: the run budget a workflow step's task is paid from.
    budget: str | None = None

    @property
    def anonymous(self) -> bool:
        """True when nobody is known to stand behind the call."""
        return self.user is None


ANONYMOUS: Final = Caller()
