"""account_transfers: offers and moves of an account to another school (issue 11)

Revision ID: 0009_transfers
Revises: 0008_event_log_keys
Create Date: 2026-12-02 06:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_transfers'
down_revision = '0008_event_log_keys'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'account_transfers',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('from_school_id', sa.String(length=32), nullable=False),
        sa.Column('to_school_id', sa.String(length=32), nullable=False),
        sa.Column('from_login_id', sa.String(length=64), nullable=False),
        sa.Column('to_login_id', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('offered_by', sa.String(length=64), nullable=True),
        sa.Column('offered_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.ForeignKeyConstraint(['from_school_id'], ['schools.id']),
        sa.ForeignKeyConstraint(['to_school_id'], ['schools.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('account_transfers', schema=None) as batch_op:
        batch_op.create_index('ix_account_transfers_account_id', ['account_id'])
        batch_op.create_index('ix_account_transfers_from_school_id', ['from_school_id'])
        batch_op.create_index('ix_account_transfers_to_school_id', ['to_school_id'])
        batch_op.create_index('ix_account_transfers_status', ['status'])


def downgrade() -> None:
    with op.batch_alter_table('account_transfers', schema=None) as batch_op:
        batch_op.drop_index('ix_account_transfers_status')
        batch_op.drop_index('ix_account_transfers_to_school_id')
        batch_op.drop_index('ix_account_transfers_from_school_id')
        batch_op.drop_index('ix_account_transfers_account_id')
    op.drop_table('account_transfers')
