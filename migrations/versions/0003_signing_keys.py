"""signing keys: the list every worker signs and publishes with

Revision ID: 0003_signing_keys
Revises: 0002_admin
Create Date: 2026-11-29 06:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_signing_keys'
down_revision = '0002_admin'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signing_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('alg', sa.String(length=8), nullable=False),
    sa.Column('public_jwk', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('activated_at', sa.DateTime(), nullable=True),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('kid')
    )
    op.create_index(op.f('ix_signing_keys_alg'), 'signing_keys', ['alg'], unique=False)
    op.create_index(op.f('ix_signing_keys_state'), 'signing_keys', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_signing_keys_state'), table_name='signing_keys')
    op.drop_index(op.f('ix_signing_keys_alg'), table_name='signing_keys')
    op.drop_table('signing_keys')
