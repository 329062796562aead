"""Holds of subscriptions and daily spend caps of user keys.

A hold says whether it belongs to a subscription (captured when it starts streaming, so ``ledger check``
can tell its capture from one made too early). A ``nex_`` key may carry a daily spend cap; each capped
key has a counter per UTC day of what its holds hold or have captured, and a hold names the key whose
counter it counts in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ledger_holds.subscription and .cap_key_id, api_keys.daily_spend_cap; create key_daily_spend."""
    op.add_column(
        "ledger_holds", sa.Column("subscription", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("ledger_holds", sa.Column("cap_key_id", sa.String(64), nullable=True))
    op.add_column("api_keys", sa.Column("daily_spend_cap", sa.BigInteger, nullable=True))
    op.create_table(
        "key_daily_spend",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("held", sa.BigInteger, nullable=False),
        sa.CheckConstraint("held >= 0", name="ck_key_daily_spend_held"),
    )


def downgrade() -> None:
    """Drop them again (existing caps and counters are lost)."""
    op.drop_table("key_daily_spend")
    op.drop_column("api_keys", "daily_spend_cap")
    op.drop_column("ledger_holds", "cap_key_id")
    op.drop_column("ledger_holds", "subscription")
