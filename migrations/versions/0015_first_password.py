"""accounts.must_change_password: the first password on a teacher's slip is changed at the
first password sign-in, issue 12

Revision ID: 0015_first_password
Revises: 0014_oneroster
Create Date: 2026-12-02 07:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_first_password'
down_revision = '0014_oneroster'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Accounts that exist already keep their password: nobody is asked to change it
    # because of the upgrade (their slips may be long gone and the password long changed).
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('must_change_password')
