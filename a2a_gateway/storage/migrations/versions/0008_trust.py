"""Trust: the evidence of finished tasks and the ratings the score is computed from, one of each per task,
and each agent's newest computed score (mirrored in agents.trust_score, which discovery filters on).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OUTCOMES = "'success', 'agent_failure', 'neutral'"


def upgrade() -> None:
    """Create trust_evidence, trust_ratings and trust_scores."""
    op.create_table(
        "trust_evidence",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("agent_owner", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("credit_weight", sa.Float, nullable=False),
        sa.CheckConstraint(f"outcome IN ({OUTCOMES})", name="ck_trust_evidence_outcome"),
        sa.CheckConstraint("credit_weight > 0 AND credit_weight <= 1", name="ck_trust_evidence_weight"),
    )
    op.create_index("ix_trust_evidence_agent_at", "trust_evidence", ["agent_id", "at_us"])
    op.create_table(
        "trust_ratings",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("agent_owner", sa.String(255), nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("credibility", sa.Float, nullable=False),
        sa.CheckConstraint("rating >= 1 AND rating <= 5", name="ck_trust_ratings_rating"),
        sa.CheckConstraint("credibility >= 0 AND credibility <= 1", name="ck_trust_ratings_credibility"),
    )
    op.create_index("ix_trust_ratings_agent_at", "trust_ratings", ["agent_id", "at_us"])
    op.create_table(
        "trust_scores",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("trust_score", sa.Float, nullable=False),
        sa.Column("rank_key", sa.Float, nullable=False),
        sa.Column("computed_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop the trust tables (agents.trust_score keeps the last score written)."""
    op.drop_table("trust_scores")
    op.drop_index("ix_trust_ratings_agent_at", "trust_ratings")
    op.drop_table("trust_ratings")
    op.drop_index("ix_trust_evidence_agent_at", "trust_evidence")
    op.drop_table("trust_evidence")
