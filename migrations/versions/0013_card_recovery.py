"""card bindings: a renewed card replaces the old binding (status 'replaced', its successor
and when), issue 11

Revision ID: 0013_card_recovery
Revises: 0012_guardians
Create Date: 2026-12-02 06:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_card_recovery'
down_revision = '0012_guardians'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing bindings replaced nothing and were replaced by nothing: both columns NULL.
    with op.batch_alter_table('card_bindings') as batch:
        batch.add_column(sa.Column('replaced_by_id', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('replaced_at', sa.DateTime(), nullable=True))
        batch.create_foreign_key('fk_card_bindings_replaced_by', 'card_bindings',
                                 ['replaced_by_id'], ['id'])


def downgrade() -> None:
    # A replaced binding must not come back as active: it stays out, as revoked.
    op.execute("UPDATE card_bindings SET status = 'revoked', revoked_at = replaced_at "
               "WHERE status = 'replaced'")
    with op.batch_alter_table('card_bindings') as batch:
        batch.drop_constraint('fk_card_bindings_replaced_by', type_='foreignkey')
        batch.drop_column('replaced_at')
        batch.drop_column('replaced_by_id')
