"""The answers API writes gave under an Idempotency-Key, so a retry gets the same answer.

Revision ID: 0011_api_idempotent_results
Revises: 0010_waitlist
Create Date: 2026-12-06 05:05:00

Booking keeps its key on the appointment itself; the other writes (patients, nurses, hours,
care teams, callback requests) have no such column, so the API keeps their answers here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_api_idempotent_results"
down_revision = "0010_waitlist"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_idempotent_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_api_idempotent_results_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotent_results")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_api_idempotent_results_user_id_key")),
    )
    op.create_index(
        op.f("ix_api_idempotent_results_created_at"),
        "api_idempotent_results",
        ["created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_api_idempotent_results_created_at"), table_name="api_idempotent_results"
    )
    op.drop_table("api_idempotent_results")
