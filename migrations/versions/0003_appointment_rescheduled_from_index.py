"""Index appointments.rescheduled_from_id, to find the visit a moved one became.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 15:15:00

An appointment page shows where a rescheduled visit went ("moved to"), which looks the new
visit up by this column; without an index that read scans every appointment.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_appointments_rescheduled_from_id"),
        "appointments",
        ["rescheduled_from_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_appointments_rescheduled_from_id"), table_name="appointments")
