"""Dashboard sessions kept on the server, so signing out really ends them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:00:00

A signed cookie alone cannot be revoked: a copy taken before signing out kept working. Each
sign-in now has a row that sign-out, deactivation and password resets end, and that expires
when idle or too old.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_staff_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    op.create_index(
        "ix_staff_sessions_user_ended", "staff_sessions", ["user_id", "ended_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_user_ended", table_name="staff_sessions")
    op.drop_table("staff_sessions")
