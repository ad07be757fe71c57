"""metrics samples for the dashboard (issue 6)

Revision ID: 0003
Revises: 0002
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('metricsample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ts', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('queued', sa.Integer(), nullable=False),
    sa.Column('running', sa.Integer(), nullable=False),
    sa.Column('scheduled', sa.Integer(), nullable=False),
    sa.Column('workers', sa.Integer(), nullable=False),
    sa.Column('busy_workers', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('metricsample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_metricsample_ts'), ['ts'], unique=False)

    # The task list sorts and filters 100,000+ rows with keyset pagination: one index per
    # (filter or sort column, id) so each page is an index range scan, never a full sort.
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.create_index('ix_task_priority_id', ['priority', 'id'], unique=False)
        batch_op.create_index('ix_task_repo_id', ['repo', 'id'], unique=False)
        batch_op.create_index('ix_task_cost_id', ['cost_usd', 'id'], unique=False)
        batch_op.create_index('ix_task_duration_id', ['duration_ms', 'id'], unique=False)
        batch_op.create_index('ix_task_finished_at', ['finished_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index('ix_task_finished_at')
        batch_op.drop_index('ix_task_duration_id')
        batch_op.drop_index('ix_task_cost_id')
        batch_op.drop_index('ix_task_repo_id')
        batch_op.drop_index('ix_task_priority_id')
    with op.batch_alter_table('metricsample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_metricsample_ts'))
    op.drop_table('metricsample')
