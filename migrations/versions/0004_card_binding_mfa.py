"""card bindings: whether the card was linked in a sign-in that passed TOTP

Revision ID: 0004_card_binding_mfa
Revises: 0003_signing_keys
Create Date: 2026-12-01 22:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_card_binding_mfa'
down_revision = '0003_signing_keys'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing bindings were linked with a password alone: false, so they never stand in
    # for an admin's TOTP.
    with op.batch_alter_table('card_bindings') as batch:
        batch.add_column(sa.Column('linked_with_mfa', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('card_bindings') as batch:
        batch.drop_column('linked_with_mfa')
