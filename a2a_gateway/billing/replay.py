"""Counters recomputed from transfers alone, and each hold's fate as its transfers tell it.

Written apart from flows.py on purpose: the reconciliation compares what the stores keep (counters, hold
records) with what this replay derives, so a bug in either side shows up as a finding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from a2a_gateway.billing import ids
from a2a_gateway.billing.models import POSTED_KINDS, AccountKind, HoldState, Transfer, TransferKind

BOTH = "captured and released"  # a fate no hold may have
PARTLY = "partly released"

# The accounts each kind of transfer may move credits between: (debit kind, credit kind).
_SHAPES = {
    TransferKind.PURCHASE: ({AccountKind.PURCHASES_CLEARING}, {AccountKind.USER_WALLET}),
    TransferKind.GRANT: ({AccountKind.PROMO_GRANTS}, {AccountKind.USER_PROMO}),
    TransferKind.HOLD: ({AccountKind.USER_WALLET, AccountKind.USER_PROMO}, {AccountKind.ESCROW}),
    TransferKind.RELEASE: ({AccountKind.USER_WALLET, AccountKind.USER_PROMO}, {AccountKind.ESCROW}),
    TransferKind.CAPTURE_PAYOUT: ({AccountKind.ESCROW}, {AccountKind.USER_WALLET}),
    TransferKind.CAPTURE_FEE: ({AccountKind.ESCROW}, {AccountKind.PLATFORM_REVENUE}),
    TransferKind.ADJUSTMENT: (set(AccountKind), set(AccountKind)),
}


@dataclass(slots=True)
class Replay:
    """What the transfers say: counters per account, hold legs, releases and captures per task."""

    counters: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    legs: dict[str, Transfer] = field(default_factory=dict)  # by leg id
    legs_of: dict[str, list[Transfer]] = field(default_factory=lambda: defaultdict(list))  # by task id
    releases: dict[str, list[Transfer]] = field(default_factory=lambda: defaultdict(list))  # by leg id
    captures: dict[str, list[Transfer]] = field(default_factory=lambda: defaultdict(list))  # by task id
    # A run budget's own movements, by budget id: its pending legs (opening, and steps' parts given back)
    # and its releases (steps' parts carved out, and the remainder at closing).
    budget_legs: dict[str, list[Transfer]] = field(default_factory=lambda: defaultdict(list))
    budget_releases: dict[str, list[Transfer]] = field(default_factory=lambda: defaultdict(list))
    malformed: list[tuple[Transfer, str]] = field(default_factory=list)

    def budget_left(self, budget_id: str, account_id: str) -> int:
        """What a budget still holds on one of its payer's accounts, as its transfers say."""
        held = sum(t.amount for t in self.budget_legs.get(budget_id, ()) if t.debit_account_id == account_id)
        gone = sum(
            t.amount for t in self.budget_releases.get(budget_id, ()) if t.debit_account_id == account_id
        )
        return held - gone

    def fate(self, task_id: str) -> HoldState | str:
        """pending, captured or released; BOTH or PARTLY when the transfers contradict each other."""
        legs = self.legs_of.get(task_id, [])
        released = [leg for leg in legs if self.releases.get(leg.id)]
        captured = bool(self.captures.get(task_id))
        if captured and released:
            return BOTH
        if captured:
            return HoldState.CAPTURED
        if released:
            return HoldState.RELEASED if len(released) == len(legs) else PARTLY
        return HoldState.PENDING


def replay(transfers: Iterable[Transfer]) -> Replay:
    """Replay every transfer; a malformed one is listed and still counted as it stands."""
    r = Replay()
    ordered = list(transfers)
    for t in ordered:
        if t.budget_id is not None and t.kind in (TransferKind.HOLD, TransferKind.RELEASE):
            (r.budget_legs if t.kind is TransferKind.HOLD else r.budget_releases)[t.budget_id].append(t)
        elif t.kind is TransferKind.HOLD:
            r.legs[t.id] = t
            r.legs_of[t.task_id or ""].append(t)
        elif t.kind is TransferKind.RELEASE:
            r.releases[t.pending_id or ""].append(t)
        elif t.kind in (TransferKind.CAPTURE_PAYOUT, TransferKind.CAPTURE_FEE):
            r.captures[t.task_id or ""].append(t)
    for t in ordered:
        why = _malformed(t, r)
        if why:
            r.malformed.append((t, why))
        if t.kind in POSTED_KINDS:
            r.counters[t.debit_account_id][1] += t.amount
            r.counters[t.credit_account_id][3] += t.amount
        elif t.budget_id is not None and t.kind in (TransferKind.HOLD, TransferKind.RELEASE):
            sign = 1 if t.kind is TransferKind.HOLD else -1  # a budget's legs stay pending until released
            r.counters[t.debit_account_id][0] += sign * t.amount
            r.counters[t.credit_account_id][2] += sign * t.amount
        elif t.kind is TransferKind.HOLD:
            debit, credit = r.counters[t.debit_account_id], r.counters[t.credit_account_id]
            if r.releases.get(t.id):  # voided: no effect left
                continue
            if r.captures.get(t.task_id or ""):  # posted from pending
                debit[1] += t.amount
                credit[3] += t.amount
            else:
                debit[0] += t.amount
                credit[2] += t.amount
    return r


def _malformed(t: Transfer, r: Replay) -> str | None:
    if t.id != ids.transfer_id(t.reference):
        return f"id is not the uuid5 of its reference {t.reference!r}"
    if t.amount <= 0:
        return f"amount {t.amount} is not positive"
    if t.debit_account_id == t.credit_account_id:
        return "debits and credits the same account"
    try:
        debit, credit = ids.kind_of(t.debit_account_id), ids.kind_of(t.credit_account_id)
    except ValueError as exc:
        return str(exc)
    debits, credits = _SHAPES[t.kind]
    if debit not in debits or credit not in credits:
        return f"a {t.kind} cannot move credits from a {debit} to a {credit}"
    same_user = ids.owner_of(t.debit_account_id) == ids.owner_of(t.credit_account_id)
    if t.kind in (TransferKind.HOLD, TransferKind.RELEASE) and not same_user:
        return "a hold moves credits into its own payer's escrow only"
    if t.budget_id is not None:
        if t.kind not in (TransferKind.HOLD, TransferKind.RELEASE) or t.task_id is not None:
            return "only a run budget's own holds and releases name the budget"
        if t.kind is TransferKind.RELEASE and not any(
            leg.debit_account_id == t.debit_account_id for leg in r.budget_legs.get(t.budget_id, ())
        ):
            return f"releases what the budget {t.budget_id} never held from {t.debit_account_id}"
    elif t.kind is TransferKind.RELEASE:
        leg = r.legs.get(t.pending_id or "")
        if leg is None:
            return "releases no hold leg"
        if (leg.debit_account_id, leg.credit_account_id, leg.amount) != (
            t.debit_account_id,
            t.credit_account_id,
            t.amount,
        ):
            return f"does not match the hold leg {leg.id} it releases"
    if t.kind in (TransferKind.CAPTURE_PAYOUT, TransferKind.CAPTURE_FEE) and not r.legs_of.get(
        t.task_id or ""
    ):
        return "captures a task that holds nothing"
    if t.kind is TransferKind.PURCHASE and not (t.checkout_session_id and t.event_id):
        return "a purchase names its checkout session and event"
    return None
