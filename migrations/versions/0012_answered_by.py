"""Outbound calls remember who answered: a person, an answering machine or a fax.

Revision ID: 0012_answered_by
Revises: 0011_api_idempotent_results
Create Date: 2026-12-06 06:00:00

Twilio's answering-machine detection reports it while the agent is already talking (so a person
is greeted at once); on a machine the call leaves a short message and ends as `voicemail`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_answered_by"
down_revision = "0011_api_idempotent_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column needs no table copy on SQLite: a plain ADD COLUMN.
    op.add_column("calls", sa.Column("answered_by", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("answered_by")
