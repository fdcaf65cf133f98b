"""Calls remember which voice service instance holds them; instances keep a heartbeat.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:40:00

A voice process that crashes leaves its calls in progress forever unless something notices:
`calls.handled_by` names the instance and `voice_instances.heartbeat_at` says when it was last
alive, so a restarted or surviving instance finalises the orphans. `ix_calls_status` keeps the
reconciler's look for unfinished calls off a full scan.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voice_instances",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_voice_instances")),
    )
    # A nullable column needs no table copy on SQLite: a plain ADD COLUMN.
    op.add_column("calls", sa.Column("handled_by", sa.String(length=128), nullable=True))
    op.create_index("ix_calls_status", "calls", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_calls_status", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("handled_by")
    op.drop_table("voice_instances")
