"""Patient address and emergency contact, for home visits.

Revision ID: 0006_patient_address
Revises: 0005
Create Date: 2026-12-05 05:30:00

Home visits could be booked for a patient with no address on file, and a nurse at the door had
no one to call when the patient did not answer. Every column is optional: existing patients
keep working, and booking a home visit checks that an address is there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_patient_address"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = (
    ("address_line1", 200),
    ("address_line2", 200),
    ("address_city", 100),
    ("address_region", 100),
    ("address_postal_code", 20),
    ("emergency_contact_name", 100),
    ("emergency_contact_relationship", 60),
    ("emergency_contact_phone", 16),
)


def upgrade() -> None:
    # Nullable columns need no table copy on SQLite: plain ADD COLUMN.
    for name, length in COLUMNS:
        op.add_column("patients", sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of patients would trip its foreign keys.
    for name, _ in reversed(COLUMNS):
        op.drop_column("patients", name)
