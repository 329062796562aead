"""What routing knows about an agent it calls."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where and how to call an agent: its JSON-RPC URL, protocol version, and whether it streams."""

    url: str
    version: str
    streams: bool = True
    subscriptions: frozenset[str] = frozenset()  # ids of the agent's skills that are subscriptions
    default_skill: str | None = None  # the skill the agent runs when a message names none
    owner: str = ""  # the user paid for the agent's calls
    price_per_task: int = 0  # credits per call of a skill without a price of its own
    skill_prices: tuple[tuple[str, int], ...] = ()  # (skill id, credits) of the skills priced apart

    def price_of(self, skill_id: str | None) -> int:
        """Credits one call of ``skill_id`` (or of the default skill) costs."""
        wanted = skill_id or self.default_skill
        for skill, price in self.skill_prices:
            if skill == wanted:
                return price
        return self.price_per_task

    def is_subscription(self, skill_id: str | None) -> bool:
        """Whether a call of ``skill_id`` (or of the default skill) is a subscription."""
        wanted = skill_id or self.default_skill
        return wanted is not None and wanted in self.subscriptions
