"""The credit ledger: accounts with TigerBeetle-style counters, immutable transfers, one hold per task.

The database keeps the money safe on its own: CHECK constraints stop wallets, promo accounts, escrow and
revenue from going negative, unique ids make a retried transfer impossible to write twice, and triggers
refuse to change or delete a transfer, delete a hold, or change a hold that has already resolved.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACCOUNT_KINDS = (
    "'user_wallet', 'user_promo', 'escrow', 'platform_revenue', 'purchases_clearing', 'promo_grants'"
)
NO_OVERDRAFT = "'user_wallet', 'user_promo', 'escrow', 'platform_revenue'"
TRANSFER_KINDS = "'purchase', 'grant', 'hold', 'capture_payout', 'capture_fee', 'release', 'adjustment'"

PARTIAL_INDEXES = (
    ("uq_ledger_transfers_session", "checkout_session_id", True, "checkout_session_id IS NOT NULL"),
    ("uq_ledger_transfers_event", "event_id", True, "event_id IS NOT NULL"),
    ("ix_ledger_transfers_purchases", "credit_account_id", False, "kind = 'purchase'"),
    ("ix_ledger_transfers_adjustments", "kind", False, "kind = 'adjustment'"),
)
# (name, table, event, condition): each refuses the statement when the condition holds.
GUARDS: tuple[tuple[str, str, str, str | None], ...] = (
    ("ledger_transfers_no_update", "ledger_transfers", "UPDATE", None),
    ("ledger_transfers_no_delete", "ledger_transfers", "DELETE", None),
    ("ledger_holds_no_delete", "ledger_holds", "DELETE", None),
    (
        "ledger_holds_resolve_once",
        "ledger_holds",
        "UPDATE",
        "OLD.state <> 'pending' OR NEW.task_id <> OLD.task_id OR NEW.payer_user_id <> OLD.payer_user_id "
        "OR NEW.payee_user_id <> OLD.payee_user_id OR NEW.price <> OLD.price OR NEW.fee_bps <> OLD.fee_bps "
        "OR NEW.promo <> OLD.promo OR NEW.purchased <> OLD.purchased",
    ),
    ("ledger_accounts_no_delete", "ledger_accounts", "DELETE", None),
)


def upgrade() -> None:
    """Create ledger_accounts, ledger_transfers, ledger_holds and their guards."""
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(255), nullable=True),
        sa.Column("debits_pending", sa.BigInteger, nullable=False),
        sa.Column("debits_posted", sa.BigInteger, nullable=False),
        sa.Column("credits_pending", sa.BigInteger, nullable=False),
        sa.Column("credits_posted", sa.BigInteger, nullable=False),
        sa.CheckConstraint(f"kind IN ({ACCOUNT_KINDS})", name="ck_ledger_accounts_kind"),
        sa.CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
            name="ck_ledger_accounts_counters",
        ),
        sa.CheckConstraint(
            f"kind NOT IN ({NO_OVERDRAFT}) OR debits_posted + debits_pending <= credits_posted",
            name="ck_ledger_accounts_no_overdraft",
        ),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("reference", sa.String(400), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("debit_account_id", sa.String(300), sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("credit_account_id", sa.String(300), sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("pending_id", sa.String(36), nullable=True),
        sa.Column("checkout_session_id", sa.String(255), nullable=True),
        sa.Column("event_id", sa.String(255), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_ledger_transfers_amount"),
        sa.CheckConstraint("debit_account_id <> credit_account_id", name="ck_ledger_transfers_accounts"),
        sa.CheckConstraint(f"kind IN ({TRANSFER_KINDS})", name="ck_ledger_transfers_kind"),
    )
    op.create_index(
        "ix_ledger_transfers_debit", "ledger_transfers", ["debit_account_id", "created_us", "seq"]
    )
    op.create_index(
        "ix_ledger_transfers_credit", "ledger_transfers", ["credit_account_id", "created_us", "seq"]
    )
    # Partial indexes: holds and captures, the hot path, never enter them.
    for name, column, unique, condition in PARTIAL_INDEXES:
        where = sa.text(condition)
        op.create_index(
            name, "ledger_transfers", [column], unique=unique, sqlite_where=where, postgresql_where=where
        )
    op.create_table(
        "ledger_holds",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("payer_user_id", sa.String(255), nullable=False),
        sa.Column("payee_user_id", sa.String(255), nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("fee_bps", sa.Integer, nullable=False),
        sa.Column("promo", sa.BigInteger, nullable=False),
        sa.Column("purchased", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=True),
        sa.Column("settled_us", sa.BigInteger, nullable=True),
        sa.CheckConstraint(
            "price > 0 AND promo >= 0 AND purchased >= 0 AND promo + purchased = price",
            name="ck_ledger_holds_amounts",
        ),
        sa.CheckConstraint("fee_bps >= 0 AND fee_bps <= 10000", name="ck_ledger_holds_fee"),
        sa.CheckConstraint("state IN ('pending', 'captured', 'released')", name="ck_ledger_holds_state"),
    )
    op.create_index("ix_ledger_holds_payer", "ledger_holds", ["payer_user_id"])
    pending = sa.text("state = 'pending'")
    op.create_index(
        "ix_ledger_holds_expiry",
        "ledger_holds",
        ["expires_us"],
        sqlite_where=pending,
        postgresql_where=pending,
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(
            "CREATE FUNCTION ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'ledger: % on % is refused (%)', TG_OP, TG_TABLE_NAME, TG_NAME "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
    for guard, table, event, refused_when in GUARDS:
        if postgres:
            when = f" WHEN ({refused_when})" if refused_when else ""
            op.execute(
                f"CREATE TRIGGER {guard} BEFORE {event} ON {table} FOR EACH ROW{when} "
                "EXECUTE FUNCTION ledger_refuse()"
            )
        else:
            when = f" WHEN {refused_when}" if refused_when else ""
            op.execute(
                f"CREATE TRIGGER {guard} BEFORE {event} ON {table} FOR EACH ROW{when} "
                f"BEGIN SELECT RAISE(ABORT, 'ledger: {event} on {table} is refused ({guard})'); END"
            )


def downgrade() -> None:
    """Drop the ledger (its credits are gone with it)."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, _event, _condition in GUARDS:
        op.execute(
            f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgres else f"DROP TRIGGER IF EXISTS {name}"
        )
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS ledger_refuse()")
    op.drop_index("ix_ledger_holds_expiry", "ledger_holds")
    op.drop_index("ix_ledger_holds_payer", "ledger_holds")
    op.drop_table("ledger_holds")
    for name in (
        *(index[0] for index in PARTIAL_INDEXES),
        "ix_ledger_transfers_credit",
        "ix_ledger_transfers_debit",
    ):
        op.drop_index(name, "ledger_transfers")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
