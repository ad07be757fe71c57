"""schedules, dependencies and queue controls (issue 5)

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "taskdependency",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("depends_on_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"]),
        sa.ForeignKeyConstraint(["depends_on_id"], ["task.id"]),
        sa.PrimaryKeyConstraint("task_id", "depends_on_id"),
    )
    with op.batch_alter_table("taskdependency", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_taskdependency_depends_on_id"), ["depends_on_id"], unique=False
        )

    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("run_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("cron", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_run_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_task_id", sa.Integer(), nullable=True),
        sa.Column("runs_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedule_next_run_at"), ["next_run_at"], unique=False)

    op.create_table(
        "queuepause",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("paused_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("queuepause")
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedule_next_run_at"))
    op.drop_table("schedule")
    with op.batch_alter_table("taskdependency", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_taskdependency_depends_on_id"))
    op.drop_table("taskdependency")
