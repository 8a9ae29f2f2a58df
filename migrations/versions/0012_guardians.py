"""guardians: guardian links, guardian requests, birth dates, the school's consent age (issue 11)

Revision ID: 0012_guardians
Revises: 0010_school_year
Create Date: 2026-12-02 06:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_guardians'
down_revision = '0010_school_year'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schools', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guardian_consent_age', sa.Integer(), nullable=False,
                                      server_default='13'))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('birth_date', sa.Date(), nullable=True))
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_by', sa.String(length=32), nullable=True))
    op.create_table(
        'guardian_links',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('guardian_id', sa.String(length=32), nullable=False),
        sa.Column('child_id', sa.String(length=32), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['guardian_id'], ['accounts.id']),
        sa.ForeignKeyConstraint(['child_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('guardian_id', 'child_id', name='uq_guardian_child'),
    )
    op.create_index('ix_guardian_links_guardian_id', 'guardian_links', ['guardian_id'])
    op.create_index('ix_guardian_links_child_id', 'guardian_links', ['child_id'])
    op.create_table(
        'guardian_requests',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('child_id', sa.String(length=32), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('decided_by', sa.String(length=32), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['child_id'], ['accounts.id']),
        sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_guardian_requests_child_id', 'guardian_requests', ['child_id'])
    op.create_index('ix_guardian_requests_client_id', 'guardian_requests', ['client_id'])


def downgrade() -> None:
    op.drop_index('ix_guardian_requests_client_id', table_name='guardian_requests')
    op.drop_index('ix_guardian_requests_child_id', table_name='guardian_requests')
    op.drop_table('guardian_requests')
    op.drop_index('ix_guardian_links_child_id', table_name='guardian_links')
    op.drop_index('ix_guardian_links_guardian_id', table_name='guardian_links')
    op.drop_table('guardian_links')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_column('approved_by')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('birth_date')
    with op.batch_alter_table('schools', schema=None) as batch_op:
        batch_op.drop_column('guardian_consent_age')
