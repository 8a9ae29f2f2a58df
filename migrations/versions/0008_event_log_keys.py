"""audit_events: the key of a record written through the event log (issue 10)

Revision ID: 0008_event_log_keys
Revises: 0007_client_secret_jwt
Create Date: 2026-12-02 03:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_event_log_keys'
down_revision = '0007_client_secret_jwt'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_key', sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint('uq_audit_events_event_key', ['event_key'])


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_audit_events_event_key', type_='unique')
        batch_op.drop_column('event_key')
