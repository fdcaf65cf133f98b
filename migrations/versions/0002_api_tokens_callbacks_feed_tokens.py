"""API tokens, callback requests, calendar feed tokens, outbox claims, stream nonces.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 04:25:00

Columns are added with plain ALTER TABLE and uniqueness with unique indexes, so SQLite never
rebuilds a table: a rebuild of `nurses` would cascade-delete its availability rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)

    op.create_table(
        "callback_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_user_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'done')", name=op.f("ck_callback_requests_status")),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_callback_requests_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_callback_requests_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_user_id"],
            ["users.id"],
            name=op.f("fk_callback_requests_resolved_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_requests")),
    )
    op.create_index(
        op.f("ix_callback_requests_call_id"), "callback_requests", ["call_id"], unique=False
    )

    op.add_column("calls", sa.Column("stream_nonce", sa.String(length=64), nullable=True))
    op.add_column(
        "calls", sa.Column("stream_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("notifications", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.add_column("notifications", sa.Column("dedupe_key", sa.String(length=200), nullable=True))
    op.create_index(
        op.f("ix_notifications_dedupe_key"), "notifications", ["dedupe_key"], unique=True
    )
    op.add_column("nurses", sa.Column("calendar_token_hash", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_nurses_calendar_token_hash"), "nurses", ["calendar_token_hash"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_nurses_calendar_token_hash"), table_name="nurses")
    op.drop_index(op.f("ix_notifications_dedupe_key"), table_name="notifications")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of nurses would cascade deletes.
    op.drop_column("nurses", "calendar_token_hash")
    op.drop_column("notifications", "dedupe_key")
    op.drop_column("notifications", "claimed_by")
    op.drop_column("calls", "stream_started_at")
    op.drop_column("calls", "stream_nonce")
    op.drop_index(op.f("ix_callback_requests_call_id"), table_name="callback_requests")
    op.drop_table("callback_requests")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
