"""The school year (issue 11): account status and graduation, graduates' apps, a school's
top grade and grace period, applied promotion batches

Revision ID: 0010_school_year
Revises: 0009_transfers
Create Date: 2026-12-02 06:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_school_year'
down_revision = '0009_transfers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False,
                                      server_default='active'))
        batch_op.add_column(sa.Column('graduated_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('schools', schema=None) as batch_op:
        batch_op.add_column(sa.Column('top_grade', sa.Integer(), nullable=False,
                                      server_default='6'))
        batch_op.add_column(sa.Column('graduate_grace_days', sa.Integer(), nullable=False,
                                      server_default='90'))
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_graduates', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    # Accounts deactivated before this revision read as deactivated.
    op.execute("UPDATE accounts SET status = 'deactivated' WHERE active = false")
    op.create_table(
        'promotion_batches',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('school_id', sa.String(length=32), nullable=False),
        sa.Column('preview_token', sa.String(length=64), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=True),
        sa.Column('promoted', sa.Integer(), nullable=False),
        sa.Column('graduated', sa.Integer(), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['school_id'], ['schools.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('preview_token'),
    )
    op.create_index('ix_promotion_batches_school_id', 'promotion_batches', ['school_id'])


def downgrade() -> None:
    op.drop_index('ix_promotion_batches_school_id', table_name='promotion_batches')
    op.drop_table('promotion_batches')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('allow_graduates')
    with op.batch_alter_table('schools', schema=None) as batch_op:
        batch_op.drop_column('graduate_grace_days')
        batch_op.drop_column('top_grade')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('graduated_at')
        batch_op.drop_column('status')
