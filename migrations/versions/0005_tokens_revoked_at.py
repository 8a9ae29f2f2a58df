"""tokens: when an account's tokens were last revoked (codes issued before are refused)

Revision ID: 0005_tokens_revoked_at
Revises: 0004_card_binding_mfa
Create Date: 2026-12-01 22:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_tokens_revoked_at'
down_revision = '0004_card_binding_mfa'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('accounts', sa.Column('tokens_revoked_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('tokens_revoked_at')
