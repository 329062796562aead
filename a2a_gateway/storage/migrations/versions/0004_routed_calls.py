"""Routed-call records; on agents, whether they stream, call health, latency and probe results.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create routed_calls and add the health columns to agents."""
    op.create_table(
        "routed_calls",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("skill_id", sa.String(100), nullable=True),
        sa.Column("upstream_task_id", sa.String(255), nullable=True),
        sa.Column("upstream_context_id", sa.String(255), nullable=True),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("first_response_ms", sa.Float, nullable=True),
        sa.Column("finished_us", sa.BigInteger, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_routed_calls_requester", "routed_calls", ["requester"])
    op.create_index("ix_routed_calls_agent_id", "routed_calls", ["agent_id"])
    op.create_index("ix_routed_calls_outcome", "routed_calls", ["outcome"])
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("card_url", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("streaming", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("call_failing", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("latency_ms", sa.Float, nullable=True))
        batch.add_column(sa.Column("probed_us", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("probe_ok", sa.Boolean, nullable=True))


def downgrade() -> None:
    """Drop routed_calls and the agents' health columns."""
    with op.batch_alter_table("agents") as batch:
        for name in ("probe_ok", "probed_us", "latency_ms", "call_failing", "streaming", "card_url"):
            batch.drop_column(name)
    op.drop_index("ix_routed_calls_outcome", "routed_calls")
    op.drop_index("ix_routed_calls_agent_id", "routed_calls")
    op.drop_index("ix_routed_calls_requester", "routed_calls")
    op.drop_table("routed_calls")
