"""The ledger's writes on PostgreSQL as single statements, one round trip each instead of one per step.

**A hold** (``HOLD``). The statement-by-statement hold (ledger_sql.hold) costs a round trip per statement:
BEGIN, the locking read, the hold row, a debit per funding account, escrow, the transfers, COMMIT. One
statement with data-modifying CTEs does it all, so an uncapped hold is a single round trip in autocommit
(a statement is its own transaction: all of it or nothing):

- ``locked`` locks the payer's escrow, promo and wallet rows in id order (``ORDER BY id FOR NO KEY
  UPDATE``: the order every ledger transaction takes account rows in, so no deadlock) and reads what is
  available on their newest versions;
- ``split`` funds the price promo first (billing/funding.py says why), in SQL;
- ``new_hold`` inserts the hold only when all three accounts exist and the credits cover the price; a
  hold already there for the task (a retry) conflicts and inserts nothing;
- ``moved`` and ``legs`` add the pending counters and write the hold's transfers only for a hold just
  inserted: they read ``new_hold``'s RETURNING, which also makes them run after the locks are taken.

The answer row (``ledger_sql.read_one_hold``) says which case it was; anything but "held" changed
nothing, and the caller decides (a retry returns the stored hold, too little credit raises, missing
accounts take the statement-by-statement path, which opens them).

**A settlement's movement** (``MOVE``): once the holds are resolved, their counter changes and transfers
(billing/flows.py computes them) in one statement instead of a locking read, an update per account and
the transfers' insert: the accounts are locked in id order first; those missing that may be opened (an
agent owner's wallet at its first payout) are inserted with their changes, the others updated; the
transfers are written in their order. It answers which accounts it changed: one that another
transaction opened meanwhile (two first payouts to one owner) is updated after it by the caller, and an
account missing that may not be opened fails the caller's transaction.

The database's CHECK constraints guard the counters here as everywhere.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import text

from a2a_gateway.billing import flows, ids
from a2a_gateway.billing.models import HoldRequest, Transfer
from a2a_gateway.storage.timestamps import micros

HOLD = text(
    """
WITH locked AS (
    SELECT id, credits_posted - debits_posted - debits_pending AS available
    FROM ledger_accounts
    WHERE id IN (CAST(:escrow AS VARCHAR), CAST(:promo AS VARCHAR), CAST(:wallet AS VARCHAR))
    ORDER BY id
    FOR NO KEY UPDATE
), funds AS (
    SELECT count(*) AS accounts,
           GREATEST(COALESCE(max(available) FILTER (WHERE id = CAST(:promo AS VARCHAR)), 0), 0) AS promo,
           GREATEST(COALESCE(max(available) FILTER (WHERE id = CAST(:wallet AS VARCHAR)), 0), 0) AS wallet
    FROM locked
), split AS (
    SELECT accounts, promo, wallet, LEAST(CAST(:price AS BIGINT), promo) AS promo_part FROM funds
), new_hold AS (
    INSERT INTO ledger_holds (task_id, payer_user_id, payee_user_id, price, fee_bps, promo, purchased,
                              state, created_us, expires_us, settled_us, subscription, cap_key_id)
    SELECT CAST(:task_id AS VARCHAR), CAST(:payer AS VARCHAR), CAST(:payee AS VARCHAR),
           CAST(:price AS BIGINT), CAST(:fee_bps AS INTEGER), promo_part,
           CAST(:price AS BIGINT) - promo_part, 'pending', CAST(:created_us AS BIGINT),
           CAST(:expires_us AS BIGINT), NULL, CAST(:subscription AS BOOLEAN), CAST(:cap_key_id AS VARCHAR)
    FROM split
    WHERE accounts = 3 AND promo + wallet >= CAST(:price AS BIGINT)
    ON CONFLICT (task_id) DO NOTHING
    RETURNING promo, purchased
), moved AS (
    UPDATE ledger_accounts AS a
    SET debits_pending = a.debits_pending + CASE a.id
            WHEN CAST(:promo AS VARCHAR) THEN h.promo
            WHEN CAST(:wallet AS VARCHAR) THEN h.purchased
            ELSE 0 END,
        credits_pending = a.credits_pending
            + CASE WHEN a.id = CAST(:escrow AS VARCHAR) THEN CAST(:price AS BIGINT) ELSE 0 END
    FROM new_hold AS h
    WHERE a.id IN (CAST(:escrow AS VARCHAR), CAST(:promo AS VARCHAR), CAST(:wallet AS VARCHAR))
    RETURNING a.id
), legs AS (
    INSERT INTO ledger_transfers (id, reference, kind, debit_account_id, credit_account_id, amount,
                                  task_id, created_us)
    SELECT leg.id, leg.reference, 'hold', leg.debit, CAST(:escrow AS VARCHAR), leg.amount,
           CAST(:task_id AS VARCHAR), CAST(:created_us AS BIGINT)
    FROM new_hold AS h
    CROSS JOIN LATERAL (VALUES
        (1, CAST(:promo_leg AS VARCHAR), CAST(:promo_ref AS VARCHAR), CAST(:promo AS VARCHAR), h.promo),
        (2, CAST(:wallet_leg AS VARCHAR), CAST(:wallet_ref AS VARCHAR), CAST(:wallet AS VARCHAR), h.purchased)
    ) AS leg (n, id, reference, debit, amount)
    WHERE leg.amount > 0
    ORDER BY leg.n
    RETURNING id
)
SELECT s.accounts, s.promo, s.wallet, h.promo, h.purchased,
       (SELECT count(*) FROM moved), (SELECT count(*) FROM legs)
FROM split AS s LEFT JOIN new_hold AS h ON true
"""
)


def values(request: HoldRequest) -> dict[str, Any]:
    """The statement's parameters for a hold request."""
    wallet, promo, escrow = ids.user_accounts(request.payer_user_id)
    promo_ref, wallet_ref = ids.hold_ref(request.task_id, True), ids.hold_ref(request.task_id, False)
    return {
        "escrow": escrow,
        "promo": promo,
        "wallet": wallet,
        "price": request.price,
        "task_id": request.task_id,
        "payer": request.payer_user_id,
        "payee": request.payee_user_id,
        "fee_bps": request.fee_bps,
        "created_us": micros(request.created_at),
        "expires_us": micros(request.expires_at) if request.expires_at is not None else None,
        "subscription": request.subscription,
        "cap_key_id": request.cap.key_id if request.cap is not None else None,
        "promo_leg": ids.transfer_id(promo_ref),
        "promo_ref": promo_ref,
        "wallet_leg": ids.transfer_id(wallet_ref),
        "wallet_ref": wallet_ref,
    }


MOVE = text(
    """
WITH locked AS (
    SELECT id FROM ledger_accounts WHERE id = ANY(CAST(:ids AS VARCHAR[])) ORDER BY id FOR NO KEY UPDATE
), d AS (
    SELECT * FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:kinds AS VARCHAR[]), CAST(:owners AS VARCHAR[]),
                         CAST(:dp AS BIGINT[]), CAST(:dpo AS BIGINT[]), CAST(:cp AS BIGINT[]),
                         CAST(:cpo AS BIGINT[]))
         AS d (id, kind, owner_id, dp, dpo, cp, cpo)
), opened AS (
    INSERT INTO ledger_accounts (id, kind, owner_id, debits_pending, debits_posted, credits_pending,
                                 credits_posted)
    SELECT id, kind, owner_id, dp, dpo, cp, cpo FROM d
    WHERE id = ANY(CAST(:may_open AS VARCHAR[])) AND id NOT IN (SELECT id FROM locked)
    ORDER BY id
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), moved AS (
    UPDATE ledger_accounts AS a
    SET debits_pending = a.debits_pending + d.dp,
        debits_posted = a.debits_posted + d.dpo,
        credits_pending = a.credits_pending + d.cp,
        credits_posted = a.credits_posted + d.cpo
    FROM d
    WHERE a.id = d.id AND a.id IN (SELECT id FROM locked)
    RETURNING a.id
), written AS (
    INSERT INTO ledger_transfers (id, reference, kind, debit_account_id, credit_account_id, amount,
                                  task_id, pending_id, created_us, budget_id)
    SELECT t.id, t.reference, t.kind, t.debit, t.credit, t.amount, t.task_id, t.pending_id, t.created_us,
           t.budget_id
    FROM unnest(CAST(:t_ids AS VARCHAR[]), CAST(:t_refs AS VARCHAR[]), CAST(:t_kinds AS VARCHAR[]),
                CAST(:t_debits AS VARCHAR[]), CAST(:t_credits AS VARCHAR[]), CAST(:t_amounts AS BIGINT[]),
                CAST(:t_tasks AS VARCHAR[]), CAST(:t_pending AS VARCHAR[]), CAST(:t_at AS BIGINT[]),
                CAST(:t_budgets AS VARCHAR[]))
         WITH ORDINALITY AS t (id, reference, kind, debit, credit, amount, task_id, pending_id, created_us,
                               budget_id, n)
    ORDER BY t.n
    RETURNING 1
)
SELECT ARRAY(SELECT id FROM moved UNION ALL SELECT id FROM opened), (SELECT count(*) FROM written),
       ARRAY(SELECT id FROM d WHERE id NOT IN (SELECT id FROM locked)
             AND id <> ALL(CAST(:may_open AS VARCHAR[])))
"""
)


def move_values(
    deltas: flows.Deltas, transfers: Sequence[Transfer], may_open: Collection[str]
) -> dict[str, Any]:
    """The movement statement's parameters: counter changes by account, the accounts it may open (an
    agent owner's wallet at a first payout), then the transfers in order."""
    order = sorted(deltas)
    return {
        "ids": order,
        "may_open": sorted(may_open),
        "kinds": [ids.kind_of(a).value for a in order],
        "owners": [ids.owner_of(a) for a in order],
        "dp": [deltas[a].debits_pending for a in order],
        "dpo": [deltas[a].debits_posted for a in order],
        "cp": [deltas[a].credits_pending for a in order],
        "cpo": [deltas[a].credits_posted for a in order],
        "t_ids": [t.id for t in transfers],
        "t_refs": [t.reference for t in transfers],
        "t_kinds": [t.kind.value for t in transfers],
        "t_debits": [t.debit_account_id for t in transfers],
        "t_credits": [t.credit_account_id for t in transfers],
        "t_amounts": [t.amount for t in transfers],
        "t_tasks": [t.task_id for t in transfers],
        "t_pending": [t.pending_id for t in transfers],
        "t_at": [micros(t.created_at) for t in transfers],
        "t_budgets": [t.budget_id for t in transfers],
    }
