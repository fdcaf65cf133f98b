"""Recurring visits: a series table, and each appointment's series and occurrence.

Revision ID: 0009_appointment_series
Revises: 0008_channel_not_configured
Create Date: 2026-12-05 14:20:00

Home care runs on weekly visits. A series holds the rule (weekdays, every N weeks, a
wall-clock time in the nurse's zone, a count or an end date); each occurrence booked is an
ordinary appointment carrying the series' id and its place in the rule, so every check, the
double-booking backstop, reminders and feeds treat it like any other visit.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_appointment_series"
down_revision = "0008_channel_not_configured"
branch_labels = None
depends_on = None

KINDS = "'phone', 'video', 'home_visit'"
SOURCES = "'dashboard', 'api', 'agent', 'cli', 'system'"


def upgrade() -> None:
    op.create_table(
        "appointment_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("nurse_id", sa.Integer(), nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("interval_weeks", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("wall_time", sa.Time(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_appointment_series_kind")),
        sa.CheckConstraint(f"source IN ({SOURCES})", name=op.f("ck_appointment_series_source")),
        sa.CheckConstraint(
            "interval_weeks >= 1", name=op.f("ck_appointment_series_interval_positive")
        ),
        sa.CheckConstraint(
            "count IS NULL OR count >= 1", name=op.f("ck_appointment_series_count_positive")
        ),
        sa.CheckConstraint(
            "count IS NOT NULL OR until IS NOT NULL",
            name=op.f("ck_appointment_series_count_or_until"),
        ),
        sa.CheckConstraint(
            "duration_minutes > 0", name=op.f("ck_appointment_series_duration_positive")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_appointment_series_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["nurse_id"], ["nurses.id"], name=op.f("fk_appointment_series_nurse_id_nurses")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_appointment_series_created_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_series")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_appointment_series_idempotency_key")),
    )
    op.create_index(
        op.f("ix_appointment_series_patient_id"), "appointment_series", ["patient_id"]
    )
    op.create_index(op.f("ix_appointment_series_nurse_id"), "appointment_series", ["nurse_id"])
    fk_name = op.f("fk_appointments_series_id_appointment_series")
    if op.get_context().dialect.name == "sqlite":
        # A plain ADD COLUMN with its constraint inline: alembic would rebuild the table to add
        # a foreign key on SQLite, and rebuilding appointments drops the double-booking triggers.
        op.execute(
            f"ALTER TABLE appointments ADD COLUMN series_id INTEGER "
            f"CONSTRAINT {fk_name} REFERENCES appointment_series (id)"
        )
    else:
        op.add_column("appointments", sa.Column("series_id", sa.Integer(), nullable=True))
        op.create_foreign_key(fk_name, "appointments", "appointment_series", ["series_id"], ["id"])
    op.add_column("appointments", sa.Column("series_index", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_appointments_series_id"), "appointments", ["series_id"])


def downgrade() -> None:
    # Occurrences stay as single visits; only their link to the series goes.
    op.drop_index(op.f("ix_appointments_series_id"), table_name="appointments")
    if op.get_context().dialect.name == "postgresql":
        op.drop_constraint(
            op.f("fk_appointments_series_id_appointment_series"),
            "appointments",
            type_="foreignkey",
        )
    op.drop_column("appointments", "series_index")
    op.drop_column("appointments", "series_id")
    op.drop_index(op.f("ix_appointment_series_nurse_id"), table_name="appointment_series")
    op.drop_index(op.f("ix_appointment_series_patient_id"), table_name="appointment_series")
    op.drop_table("appointment_series")
