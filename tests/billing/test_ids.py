"""Account and transfer ids are deterministic and never collide between flows or tasks."""

from __future__ import annotations

import uuid

import pytest

from a2a_gateway.billing import ids
from a2a_gateway.billing.models import AccountKind


def test_a_transfer_id_is_the_uuid5_of_its_reference() -> None:
    assert ids.transfer_id("task:t1:hold") == str(uuid.uuid5(ids.NAMESPACE, "task:t1:hold"))
    assert ids.transfer_id("task:t1:hold") == ids.transfer_id("task:t1:hold")
    assert uuid.UUID(ids.transfer_id("x")).version == 5


def test_every_reference_of_a_task_is_distinct() -> None:
    refs = [
        ids.hold_ref("t", promo=False),
        ids.hold_ref("t", promo=True),
        ids.release_ref("t", promo=False),
        ids.release_ref("t", promo=True),
        ids.payout_ref("t"),
        ids.fee_ref("t"),
        ids.hold_ref("u", promo=False),
        ids.purchase_ref("t"),
        ids.grant_ref("t"),
    ]
    assert len({ids.transfer_id(r) for r in refs}) == len(refs)


def test_account_ids_and_their_kinds() -> None:
    for kind, make in (
        (AccountKind.USER_WALLET, ids.wallet),
        (AccountKind.USER_PROMO, ids.promo),
        (AccountKind.ESCROW, ids.escrow),
    ):
        account = make("u:1")  # an owner id may itself hold a colon
        assert account == ids.account_id(kind, "u:1")
        assert ids.kind_of(account) is kind and ids.owner_of(account) == "u:1"
    assert ids.user_accounts("u") == ("wallet:u", "promo:u", "escrow:u")
    for system in (AccountKind.PLATFORM_REVENUE, AccountKind.PURCHASES_CLEARING, AccountKind.PROMO_GRANTS):
        assert ids.account_id(system) == system.value
        assert ids.kind_of(system.value) is system and ids.owner_of(system.value) is None


@pytest.mark.parametrize("bad", ["wallet:", "nope:u", "user_wallet", "escrow", "bank"])
def test_ids_the_ledger_never_makes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        ids.kind_of(bad)


def test_a_user_account_needs_its_owner() -> None:
    with pytest.raises(ValueError):
        ids.account_id(AccountKind.USER_WALLET)
