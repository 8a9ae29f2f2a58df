"""clients: the sealed secret of client_secret_jwt clients (issue 9)

Revision ID: 0007_client_secret_jwt
Revises: 0006_enrolment_codes
Create Date: 2026-12-01 23:55:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_client_secret_jwt'
down_revision = '0006_enrolment_codes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_sealed', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('secret_sealed')
