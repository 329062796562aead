"""Tasks, their history, artifacts and push-notification configs.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the task tables."""
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("context_id", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_ts", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_tasks_owner_status_ts", "tasks", ["owner", "status_ts", "id"])
    op.create_index("ix_tasks_context_id", "tasks", ["context_id"])
    op.create_index("ix_tasks_state", "tasks", ["state"])
    op.create_table(
        "task_messages",
        sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "task_artifacts",
        sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("artifact_id", sa.String(255), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("artifact", sa.Text, nullable=False),
    )
    op.create_table(
        "task_push_configs",
        sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the task tables."""
    op.drop_table("task_push_configs")
    op.drop_table("task_artifacts")
    op.drop_table("task_messages")
    op.drop_table("tasks")
