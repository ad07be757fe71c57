"""schedules carry an IANA time zone for their cron (issue 5)

Revision ID: 0005
Revises: 0004
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Existing schedules were UTC: they keep firing at the same instants.
    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'timezone',
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default='UTC',
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.drop_column('timezone')
