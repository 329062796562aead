"""Deterministic ids: an account's id from its kind and owner, a transfer's from its business reference.

A transfer id is the uuid5 of a reference such as ``task:{task_id}:hold``, so a retried hold, payout or
purchase carries the id of the first attempt and the ledger's unique key makes the retry harmless.
"""

from __future__ import annotations

import uuid

from a2a_gateway.billing.models import USER_KINDS, AccountKind

NAMESPACE = uuid.UUID("5d0c2b5e-8f1a-5c43-9a57-3c1d0e6b7a21")  # fixed forever: ids must never change
_PREFIX = {
    AccountKind.USER_WALLET: "wallet",
    AccountKind.USER_PROMO: "promo",
    AccountKind.ESCROW: "escrow",
}


def transfer_id(reference: str) -> str:
    """The id of the transfer made for ``reference``."""
    return str(uuid.uuid5(NAMESPACE, reference))


def account_id(kind: AccountKind, owner_id: str | None = None) -> str:
    """``wallet:{user}``, ``promo:{user}``, ``escrow:{user}``, or the system account's kind."""
    if kind in USER_KINDS:
        if not owner_id:
            raise ValueError(f"a {kind} account belongs to a user")
        return f"{_PREFIX[kind]}:{owner_id}"
    return kind.value


def user_accounts(user_id: str) -> tuple[str, str, str]:
    """The wallet, promo and escrow account ids of a user."""
    return f"wallet:{user_id}", f"promo:{user_id}", f"escrow:{user_id}"


def wallet(user_id: str) -> str:
    """A user's wallet (purchased and earned credits)."""
    return f"wallet:{user_id}"


def promo(user_id: str) -> str:
    """A user's promotional credits."""
    return f"promo:{user_id}"


def escrow(user_id: str) -> str:
    """Where a user's held credits wait for their tasks to end."""
    return f"escrow:{user_id}"


def owner_of(account: str) -> str | None:
    """The user a user account belongs to (None for a system account)."""
    prefix, sep, owner = account.partition(":")
    return owner if sep and prefix in ("wallet", "promo", "escrow") else None


def kind_of(account: str) -> AccountKind:
    """The kind of an account from its id (ValueError for an id this module never makes)."""
    prefix, sep, owner = account.partition(":")
    if sep:
        for kind, name in _PREFIX.items():
            if name == prefix and owner:
                return kind
        raise ValueError(f"not a ledger account id: {account!r}")
    try:
        kind = AccountKind(account)
    except ValueError:
        raise ValueError(f"not a ledger account id: {account!r}") from None
    if kind in USER_KINDS:
        raise ValueError(f"a {kind} account belongs to a user")
    return kind


PLATFORM_REVENUE = AccountKind.PLATFORM_REVENUE.value
PURCHASES_CLEARING = AccountKind.PURCHASES_CLEARING.value
PROMO_GRANTS = AccountKind.PROMO_GRANTS.value


# Business references of each movement; one task's references never collide with another's.
def hold_ref(task_id: str, promo: bool) -> str:
    """A hold leg: the purchased part, or the promotional part."""
    return f"task:{task_id}:hold:promo" if promo else f"task:{task_id}:hold"


def release_ref(task_id: str, promo: bool) -> str:
    """The release of one hold leg."""
    return f"task:{task_id}:release:promo" if promo else f"task:{task_id}:release"


def payout_ref(task_id: str) -> str:
    """The agent owner's share of a captured hold."""
    return f"task:{task_id}:capture:payout"


def fee_ref(task_id: str) -> str:
    """The platform's share of a captured hold."""
    return f"task:{task_id}:capture:fee"


def purchase_ref(checkout_session_id: str) -> str:
    """A purchase: one per checkout session, whatever events announce it."""
    return f"purchase:{checkout_session_id}"


def grant_ref(reference: str) -> str:
    """A promotional grant (``signup:{user}``, or an operator's own reference)."""
    return f"grant:{reference}"


def budget_ref(budget_id: str, what: str, promo: bool) -> str:
    """A movement of a run budget: ``hold`` (its opening legs), ``carve:{task}`` (a step's task takes its
    price out of it), ``return:{task}`` (a released step gives its price back), ``close`` (the remainder
    goes back to the payer). Both parts (promotional and purchased) have their own reference."""
    return f"run:{budget_id}:{what}:promo" if promo else f"run:{budget_id}:{what}"
