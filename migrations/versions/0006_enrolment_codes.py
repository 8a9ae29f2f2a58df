"""staff: one-time TOTP enrolment codes (issue 8)

Revision ID: 0006_enrolment_codes
Revises: 0005_tokens_revoked_at
Create Date: 2026-12-01 22:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_enrolment_codes'
down_revision = '0005_tokens_revoked_at'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_enrolment_codes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    with op.batch_alter_table('admin_enrolment_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_enrolment_codes_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('admin_enrolment_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_enrolment_codes_account_id'))
    op.drop_table('admin_enrolment_codes')
