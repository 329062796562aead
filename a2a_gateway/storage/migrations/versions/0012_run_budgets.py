"""Run budgets: one hold for a whole workflow run, that its steps' holds are carved out of.

``ledger_budgets`` keeps each run's budget (what it was opened with, promo and purchased parts, what its
steps have not taken yet, and what closing gave back); a step's hold and a budget's own transfers name
the budget. Guards: a budget is never deleted and, once closed, never changed; the hold guard now also
covers the columns added since it was written (subscription, cap key, budget).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_HOLD_FROZEN = (
    "task_id",
    "payer_user_id",
    "payee_user_id",
    "price",
    "fee_bps",
    "promo",
    "purchased",
    "subscription",
    "cap_key_id",
    "budget_id",
    "created_us",
)
_BUDGET_FROZEN = ("run_id", "payer_user_id", "amount", "promo", "purchased", "created_us", "cap_key_id")


def _changed(columns: tuple[str, ...], postgres: bool) -> str:
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    return " OR ".join(f"NEW.{c} {differs} OLD.{c}" for c in columns)


def _guards(postgres: bool) -> tuple[tuple[str, str, str, str | None], ...]:
    return (
        (
            "ledger_holds_resolve_once",
            "ledger_holds",
            "UPDATE",
            f"OLD.state <> 'pending' OR {_changed(_HOLD_FROZEN, postgres)}",
        ),
        ("ledger_budgets_no_delete", "ledger_budgets", "DELETE", None),
        (
            "ledger_budgets_close_once",
            "ledger_budgets",
            "UPDATE",
            f"OLD.state <> 'open' OR {_changed(_BUDGET_FROZEN, postgres)}",
        ),
    )


def _create(name: str, table: str, event: str, refused_when: str | None, postgres: bool) -> None:
    if postgres:
        when = f" WHEN ({refused_when})" if refused_when else ""
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW{when} "
            "EXECUTE FUNCTION ledger_refuse()"
        )
    else:
        when = f" WHEN {refused_when}" if refused_when else ""
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW{when} "
            f"BEGIN SELECT RAISE(ABORT, 'ledger: {event} on {table} is refused ({name})'); END"
        )


def _drop(name: str, table: str, postgres: bool) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgres else f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    """Create ledger_budgets, add budget_id to holds and transfers, and widen the guards."""
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "ledger_budgets",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("payer_user_id", sa.String(255), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("promo", sa.BigInteger, nullable=False),
        sa.Column("purchased", sa.BigInteger, nullable=False),
        sa.Column("remaining_promo", sa.BigInteger, nullable=False),
        sa.Column("remaining_purchased", sa.BigInteger, nullable=False),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("closed_us", sa.BigInteger, nullable=True),
        sa.Column("cap_key_id", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "amount > 0 AND promo >= 0 AND purchased >= 0 AND promo + purchased = amount",
            name="ck_ledger_budgets_amounts",
        ),
        sa.CheckConstraint(
            "remaining_promo >= 0 AND remaining_purchased >= 0 AND remaining_promo <= promo "
            "AND remaining_purchased <= purchased AND refunded >= 0 AND refunded <= amount",
            name="ck_ledger_budgets_remaining",
        ),
        sa.CheckConstraint(
            "state = 'open' OR (state = 'closed' AND remaining_promo = 0 AND remaining_purchased = 0)",
            name="ck_ledger_budgets_state",
        ),
    )
    op.add_column("ledger_holds", sa.Column("budget_id", sa.String(64), nullable=True))
    op.add_column("ledger_transfers", sa.Column("budget_id", sa.String(64), nullable=True))
    _drop("ledger_holds_resolve_once", "ledger_holds", postgres)
    for guard in _guards(postgres):
        _create(*guard, postgres=postgres)


def downgrade() -> None:
    """Drop run budgets (their credits' record is gone with them) and restore the old hold guard."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, _event, _when in _guards(postgres):
        _drop(name, table, postgres)
    op.drop_column("ledger_transfers", "budget_id")
    op.drop_column("ledger_holds", "budget_id")
    op.drop_table("ledger_budgets")
    old = (
        "OLD.state <> 'pending' OR NEW.task_id <> OLD.task_id OR NEW.payer_user_id <> OLD.payer_user_id "
        "OR NEW.payee_user_id <> OLD.payee_user_id OR NEW.price <> OLD.price OR NEW.fee_bps <> OLD.fee_bps "
        "OR NEW.promo <> OLD.promo OR NEW.purchased <> OLD.purchased"
    )
    _create("ledger_holds_resolve_once", "ledger_holds", "UPDATE", old, postgres)
