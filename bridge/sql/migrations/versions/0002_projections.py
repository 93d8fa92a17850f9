"""Projection checkpoints and documents, written in one transaction per save.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canopy_projections",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("checkpoint", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "canopy_projection_documents",
        sa.Column("projection", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("canopy_projection_documents")
    op.drop_table("canopy_projections")
