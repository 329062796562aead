"""The ledger store the billing service talks through; storage/ledger_repository.py fills it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from a2a_gateway.billing.history import Entry, UsageDay
from a2a_gateway.billing.models import (
    Balance,
    Budget,
    BudgetRequest,
    Hold,
    HoldRequest,
    Settlement,
    Transfer,
    TransferKind,
)
from a2a_gateway.billing.reconcile import LedgerSnapshot


class Ledger(Protocol):
    """Accounts, immutable transfers and holds; every method is one atomic transaction."""

    async def hold(self, request: HoldRequest) -> Hold:
        """Reserve the price from the payer's promo credits, then wallet (funding.fund), atomically with
        the balance check: InsufficientCredits with nothing written when they fall short. A request with
        a ``cap`` adds its price to the key's counter of the day in the same transaction: SpendCapReached
        with nothing written when that would pass the cap. The same request again returns the stored
        hold (in whatever state it is now, counted once); a different one for the same task raises
        Conflict.

        A request with a ``budget_id`` is a workflow step's: its price is carved out of what that run
        budget has left (promo part first) instead of the payer's accounts, InsufficientCredits when the
        budget is closed, missing, another payer's or short of the price."""
        ...

    async def open_budget(self, request: BudgetRequest) -> Budget:
        """Hold a whole run's budget, funded like a hold (promo first, the key's cap counted), atomically
        with the balance check: InsufficientCredits or SpendCapReached with nothing written. The same
        request again returns the stored budget; a different one for the same run raises Conflict."""
        ...

    async def close_budget(self, budget_id: str, at: datetime) -> Budget | None:
        """The run ended: release what its steps did not take and close it; the budget closed now (None
        when it was closed already or never opened). Step holds still pending settle as usual after."""
        ...

    async def get_budget(self, budget_id: str) -> Budget | None:
        """A run budget in its current state."""
        ...

    async def settle(self, settlements: Sequence[Settlement], at: datetime) -> list[Hold]:
        """Capture or release each task's pending hold; the holds settled now, in their new state.

        A task whose hold is not pending (settled already, or never held) is skipped: settling is
        exactly once whatever races. A task named twice settles by its first settlement. A released
        hold of a capped key takes its price off that key's counter of the day it was made. A released
        step hold gives its parts back to its run budget while that budget is open, in the same
        transaction (a closed budget's steps are released to the payer)."""
        ...

    async def record(self, transfer: Transfer) -> bool:
        """Post a purchase or grant once, opening its accounts: True when written now, False for a
        retry of it; Conflict for a different transfer under its id, checkout session or event."""
        ...

    async def balance(self, user_id: str) -> Balance:
        """A user's balance view (zeros for a user the ledger has never seen)."""
        ...

    async def transactions(
        self, user_id: str, limit: int, offset: int, kind: TransferKind | None
    ) -> list[Entry]:
        """A page of a user's entries, newest first; ``balance_after`` counts every entry, filtered
        or not."""
        ...

    async def daily_usage(self, user_id: str, since: datetime) -> list[UsageDay]:
        """Spent (captured prices, by settlement day) and earned (payouts) per UTC day from ``since``;
        days without either are left out."""
        ...

    async def get_hold(self, task_id: str) -> Hold | None:
        """A task's hold in its current state."""
        ...

    async def expired_holds(self, now: datetime, limit: int) -> list[Hold]:
        """Pending holds whose expiry has passed, oldest expiry first (what the sweeper releases)."""
        ...

    async def snapshot(self) -> LedgerSnapshot:
        """Every account, transfer and hold, and the held tasks' states, from one consistent read."""
        ...
