"""The event log: events, stream versions and the head offset.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canopy_events",
        sa.Column("offset", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("stream", sa.Text, nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("producer_name", sa.Text, nullable=False),
        sa.Column("producer_version", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=True),
    )
    op.create_index("canopy_events_tenant_offset", "canopy_events", ["tenant_id", "offset"])
    op.create_index(
        "canopy_events_stream",
        "canopy_events",
        ["tenant_id", "stream", "stream_version"],
        unique=True,
    )
    op.create_index("canopy_events_topic_time", "canopy_events", ["topic", "time_us"])
    op.create_index(
        "canopy_events_idempotency", "canopy_events", ["tenant_id", "idempotency_key"], unique=True
    )
    op.create_table(
        "canopy_streams",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    head = op.create_table(
        "canopy_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_offset", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "last_offset": 0}])


def downgrade() -> None:
    op.drop_table("canopy_head")
    op.drop_table("canopy_streams")
    op.drop_table("canopy_events")
