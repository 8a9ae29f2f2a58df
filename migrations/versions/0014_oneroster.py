"""accounts: the OneRoster sourcedId a school's roster gives each person, and the Japan
Profile's kana names and student (attendance) number (issue 11)

Revision ID: 0014_oneroster
Revises: 0013_card_recovery
Create Date: 2026-12-02 06:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_oneroster'
down_revision = '0013_card_recovery'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sourced_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('kana_family_name', sa.String(length=100),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('kana_given_name', sa.String(length=100),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('student_number', sa.String(length=16),
                                      nullable=False, server_default=''))
        batch_op.create_unique_constraint('uq_account_school_sourced_id',
                                          ['school_id', 'sourced_id'])


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_account_school_sourced_id', type_='unique')
        batch_op.drop_column('student_number')
        batch_op.drop_column('kana_given_name')
        batch_op.drop_column('kana_family_name')
        batch_op.drop_column('sourced_id')
