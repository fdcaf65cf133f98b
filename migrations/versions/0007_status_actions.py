"""Appointment status changes (with notes and undo) and nurses' time-off requests.

Revision ID: 0007_status_actions
Revises: 0006_patient_address
Create Date: 2026-12-05 05:20:00

A no-show or completion was one click with no note and no way back; each status change now
has a row with its note, who and when, which an undo within a short window marks undone.
Nurses ask for time off; a coordinator approves (creating the override) or declines.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_status_actions"
down_revision = "0006_patient_address"
branch_labels = None
depends_on = None

STATUSES = "'scheduled', 'completed', 'cancelled', 'no_show', 'entered_in_error'"


def upgrade() -> None:
    op.create_table(
        "appointment_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=80), nullable=True),
        sa.CheckConstraint(
            f"from_status IN ({STATUSES})",
            name=op.f("ck_appointment_status_changes_from_status"),
        ),
        sa.CheckConstraint(
            f"to_status IN ({STATUSES})", name=op.f("ck_appointment_status_changes_to_status")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_status_changes_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_appointment_status_changes_actor_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_status_changes")),
    )
    op.create_index(
        "ix_appointment_status_changes_appointment",
        "appointment_status_changes",
        ["appointment_id", "at"],
        unique=False,
    )
    op.create_table(
        "time_off_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nurse_id", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("end_time", sa.Time(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("requested_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=200), nullable=False),
        sa.Column("override_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'declined')",
            name=op.f("ck_time_off_requests_status"),
        ),
        sa.CheckConstraint(
            "end_date >= start_date", name=op.f("ck_time_off_requests_date_range")
        ),
        sa.ForeignKeyConstraint(
            ["nurse_id"], ["nurses.id"], name=op.f("fk_time_off_requests_nurse_id_nurses")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"],
            ["users.id"],
            name=op.f("fk_time_off_requests_requested_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"],
            ["users.id"],
            name=op.f("fk_time_off_requests_decided_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["override_id"],
            ["nurse_availability_overrides.id"],
            name=op.f("fk_time_off_requests_override_id_nurse_availability_overrides"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_off_requests")),
    )
    op.create_index(
        op.f("ix_time_off_requests_nurse_id"), "time_off_requests", ["nurse_id"], unique=False
    )
    op.create_index(
        "ix_time_off_requests_status_created",
        "time_off_requests",
        ["status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_time_off_requests_status_created", table_name="time_off_requests")
    op.drop_index(op.f("ix_time_off_requests_nurse_id"), table_name="time_off_requests")
    op.drop_table("time_off_requests")
    op.drop_index(
        "ix_appointment_status_changes_appointment", table_name="appointment_status_changes"
    )
    op.drop_table("appointment_status_changes")
