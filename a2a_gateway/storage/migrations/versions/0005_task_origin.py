"""On tasks, the origin: the skill a task runs and the request it started from, so that a task paused for
the caller's input can be answered after a restart (decision 0014).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add tasks.origin (JSON text; empty for tasks written before, and for relayed tasks)."""
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("origin", sa.Text, nullable=True))


def downgrade() -> None:
    """Drop tasks.origin."""
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("origin")
