"""The waitlist: patients waiting for an earlier time, and the times held for them.

Revision ID: 0010_waitlist
Revises: 0009_appointment_series
Create Date: 2026-12-06 02:30:00

A patient waits with one nurse or any nurse who covers their needs, within a window of dates,
weekdays and parts of the day. Freed time is offered to the first in line and held until the
offer's `expires_at`; a partial unique index keeps one open offer per waiting patient.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_waitlist"
down_revision = "0009_appointment_series"
branch_labels = None
depends_on = None

KINDS = "'phone', 'video', 'home_visit'"
SOURCES = "'dashboard', 'api', 'agent', 'cli', 'system'"
ENTRY_STATUSES = "'waiting', 'offered', 'booked', 'cancelled', 'expired'"
OFFER_STATUSES = "'offered', 'accepted', 'declined', 'lapsed'"


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("nurse_id", sa.Integer(), nullable=True),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("from_date", sa.Date(), nullable=False),
        sa.Column("until_date", sa.Date(), nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("parts_of_day", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            f"status IN ({ENTRY_STATUSES})", name=op.f("ck_waitlist_entries_status")
        ),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_waitlist_entries_kind")),
        sa.CheckConstraint(f"source IN ({SOURCES})", name=op.f("ck_waitlist_entries_source")),
        sa.CheckConstraint("until_date >= from_date", name=op.f("ck_waitlist_entries_date_range")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_waitlist_entries_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["nurse_id"], ["nurses.id"], name=op.f("fk_waitlist_entries_nurse_id_nurses")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_waitlist_entries_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_waitlist_entries_created_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
    )
    op.create_index(op.f("ix_waitlist_entries_patient_id"), "waitlist_entries", ["patient_id"])
    op.create_index(
        "ix_waitlist_entries_status_joined", "waitlist_entries", ["status", "joined_at"]
    )
    op.create_table(
        "waitlist_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("nurse_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({OFFER_STATUSES})", name=op.f("ck_waitlist_offers_status")),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_waitlist_offers_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["waitlist_entries.id"],
            name=op.f("fk_waitlist_offers_entry_id_waitlist_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["nurse_id"], ["nurses.id"], name=op.f("fk_waitlist_offers_nurse_id_nurses")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_waitlist_offers_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_offers")),
    )
    op.create_index(
        "ix_waitlist_offers_nurse_status_start",
        "waitlist_offers",
        ["nurse_id", "status", "start_at"],
    )
    op.create_index(
        "ix_waitlist_offers_status_expires", "waitlist_offers", ["status", "expires_at"]
    )
    op.create_index(
        "uq_waitlist_offers_open_entry",
        "waitlist_offers",
        ["entry_id"],
        unique=True,
        sqlite_where=sa.text("status = 'offered'"),
        postgresql_where=sa.text("status = 'offered'"),
    )


def downgrade() -> None:
    op.drop_index("uq_waitlist_offers_open_entry", table_name="waitlist_offers")
    op.drop_index("ix_waitlist_offers_status_expires", table_name="waitlist_offers")
    op.drop_index("ix_waitlist_offers_nurse_status_start", table_name="waitlist_offers")
    op.drop_table("waitlist_offers")
    op.drop_index("ix_waitlist_entries_status_joined", table_name="waitlist_entries")
    op.drop_index(op.f("ix_waitlist_entries_patient_id"), table_name="waitlist_entries")
    op.drop_table("waitlist_entries")
