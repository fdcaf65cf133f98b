"""Notifications whose channel is not configured get a status of their own.

Revision ID: 0008_channel_not_configured
Revises: 0007_status_actions
Create Date: 2026-12-05 08:20:00

A fresh install has no SMS or SMTP settings, and every text or email it queued ended as a red
"failed" row. Such a message was never tried: it is now "unconfigured", which is not a failure
and is never retried on its own.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_channel_not_configured"
down_revision = "0007_status_actions"
branch_labels = None
depends_on = None

OLD = "'queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled', 'unknown'"
NEW = f"{OLD}, 'unconfigured'"


def _notifications(statuses: str) -> sa.Table:
    """The notifications table as 0001 and 0002 left it, with `statuses` allowed.

    SQLite cannot alter a CHECK constraint, so the table is copied into this definition;
    giving it here rather than reflecting it also lets `upgrade --sql` write the script.
    """
    return sa.Table(
        "notifications",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=10), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("nurse_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("send_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "channel IN ('sms', 'email', 'in_app')", name="ck_notifications_channel"
        ),
        sa.CheckConstraint(
            "recipient_kind IN ('patient', 'nurse', 'user')",
            name="ck_notifications_recipient_kind",
        ),
        sa.CheckConstraint(f"status IN ({statuses})", name="ck_notifications_status"),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name="fk_notifications_appointment_id_appointments",
        ),
        sa.ForeignKeyConstraint(["nurse_id"], ["nurses.id"], name="fk_notifications_nurse_id_nurses"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_notifications_patient_id_patients"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_notifications_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.Index("ix_notifications_appointment_id", "appointment_id"),
        sa.Index("ix_notifications_provider_id", "provider_id"),
        sa.Index("ix_notifications_status_send_after", "status", "send_after"),
        sa.Index("ix_notifications_dedupe_key", "dedupe_key", unique=True),
    )


def _allow(statuses: str) -> None:
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table(
            "notifications", copy_from=_notifications(statuses), recreate="always"
        ):
            pass
        return
    op.drop_constraint(op.f("ck_notifications_status"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_status"), "notifications", f"status IN ({statuses})"
    )


def upgrade() -> None:
    _allow(NEW)


def downgrade() -> None:
    # The older schema has no such status; these messages were recorded as failed back then.
    op.execute(
        "UPDATE notifications SET status = 'failed', "
        "last_error = COALESCE(last_error, 'channel not configured') "
        "WHERE status = 'unconfigured'"
    )
    _allow(OLD)
