"""The agent registry, its tag index, and per-agent API keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the registry tables and link API keys to agents."""
    op.create_table(
        "agents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("skills", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("category", sa.String(100), nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("price_per_task", sa.BigInteger, nullable=False),
        sa.Column("protocol_version", sa.String(8), nullable=False),
        sa.Column("reported_status", sa.String(16), nullable=False),
        sa.Column("last_heartbeat_us", sa.BigInteger, nullable=True),
        sa.Column("trust_score", sa.Float, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_agents_owner_id", "agents", ["owner_id"])
    op.create_index("ix_agents_category", "agents", ["category"])
    op.create_table(
        "agent_tags",
        sa.Column(
            "agent_id", sa.String(64), sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("tag", sa.String(50), primary_key=True),
    )
    op.create_index("ix_agent_tags_tag", "agent_tags", ["tag", "agent_id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("agent_id", sa.String(64), nullable=True))
        batch.create_index("ix_api_keys_agent_id", ["agent_id"])


def downgrade() -> None:
    """Drop the registry tables."""
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_agent_id")
        batch.drop_column("agent_id")
    op.drop_table("agent_tags")
    op.drop_table("agents")
