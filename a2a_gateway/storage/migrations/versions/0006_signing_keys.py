"""The signing key ring: Ed25519 keys shared by every gateway process on one database, the private half
encrypted under a key derived from the pepper.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create signing_keys."""
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("private_key", sa.Text, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("retires_us", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    """Drop signing_keys (tokens they signed no longer verify)."""
    op.drop_table("signing_keys")
