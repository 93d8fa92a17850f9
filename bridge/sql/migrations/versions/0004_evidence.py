"""Evidence tables: error reports from running services, beside the log (never in it).

They are in the log's chain of revisions, not a chain of their own, because the database is
one unit: one schema revision, one migration lock, one upgrade when a store starts, so every
server that opens the log finds them. The event log never reads them; their model is
``canopy.server.incidents.tables``.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

IdKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "canopy_evidence",
        sa.Column("id", IdKey, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("release", sa.Text, nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("exception_type", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("frames", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("raw_size", sa.Integer, nullable=False),
    )
    op.create_index(
        "canopy_evidence_event", "canopy_evidence", ["tenant_id", "event_id"], unique=True
    )
    op.create_index(
        "canopy_evidence_signature",
        "canopy_evidence",
        ["tenant_id", "service", "signature", "time_us"],
    )
    op.create_index("canopy_evidence_tenant_time", "canopy_evidence", ["tenant_id", "time_us"])
    op.create_index("canopy_evidence_time", "canopy_evidence", ["time_us"])


def downgrade() -> None:
    op.drop_table("canopy_evidence")
