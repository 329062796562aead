"""Tasks say which gateway process runs them and which event their stored state includes.

``holder`` is the process that writes the task (NULL on a single-process gateway); a task whose holder's
process lease has expired is taken over by another process (decision 0020). ``last_seq`` is the number of
the task's last event that the row reflects, so a subscriber on any process resumes right after it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add tasks.holder and tasks.last_seq."""
    op.add_column("tasks", sa.Column("holder", sa.String(64), nullable=True))
    op.add_column("tasks", sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_tasks_holder_state", "tasks", ["holder", "state"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_tasks_holder_state", table_name="tasks")
    op.drop_column("tasks", "last_seq")
    op.drop_column("tasks", "holder")
