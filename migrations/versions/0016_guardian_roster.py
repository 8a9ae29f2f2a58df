"""guardian_links.origin: whether a link was made by hand ("school") or by a roster import
("roster"), so a bulk roster ends only the links a roster made (issue 11)

Revision ID: 0016_guardian_roster
Revises: 0015_first_password
Create Date: 2026-12-02 07:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_guardian_roster'
down_revision = '0015_first_password'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('guardian_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=16), nullable=False,
                                      server_default='school'))


def downgrade() -> None:
    with op.batch_alter_table('guardian_links', schema=None) as batch_op:
        batch_op.drop_column('origin')
