"""refused_events: event-log records the database refused for their own data, kept with the
error instead of retried with their batch forever (issue 10)

Revision ID: 0017_refused_events
Revises: 0016_guardian_roster
Create Date: 2026-12-08 02:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_refused_events'
down_revision = '0016_guardian_roster'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refused_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('record_key', sa.String(length=64), nullable=True),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_key')
    )
    with op.batch_alter_table('refused_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refused_events_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refused_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refused_events_at'))
    op.drop_table('refused_events')
