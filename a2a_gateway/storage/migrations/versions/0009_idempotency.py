"""Idempotency keys: the stored answer of a REST request made with an Idempotency-Key, one per principal
and key, replayed for 24 h.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create idempotency_keys."""
    op.create_table(
        "idempotency_keys",
        sa.Column("principal_id", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.CheckConstraint("state IN ('in_progress', 'done')", name="ck_idempotency_keys_state"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_us"])


def downgrade() -> None:
    """Drop idempotency_keys."""
    op.drop_index("ix_idempotency_keys_created", "idempotency_keys")
    op.drop_table("idempotency_keys")
