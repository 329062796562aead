"""Holds say whether they belong to a subscription (captured when it starts streaming, so ``ledger check``
can tell its capture from one made too early).

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
    """Add ledger_holds.subscription (existing holds are not subscriptions)."""
    op.add_column(
        "ledger_holds", sa.Column("subscription", sa.Boolean, nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    """Drop ledger_holds.subscription."""
    op.drop_column("ledger_holds", "subscription")
