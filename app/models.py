"""SQLModel tables: the database is the source of truth for tasks, attempts and their events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time in UTC (stored naive-free; SQLite gives it back naive, see db.aware)."""
    return datetime.now(UTC)


class TaskStatus:
    """The lifecycle of a task; the last three are terminal."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ALL = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
    TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
    ACTIVE = (QUEUED, RUNNING)


class Task(SQLModel, table=True):
    """One coding task submitted to Claude Code, with its latest outcome."""

    __table_args__ = (
        Index("ix_task_status_id", "status", "id"),
        # keyset pagination of the task list (migration 0003)
        Index("ix_task_priority_id", "priority", "id"),
        Index("ix_task_repo_id", "repo", "id"),
        Index("ix_task_cost_id", "cost_usd", "id"),
        Index("ix_task_duration_id", "duration_ms", "id"),
        Index("ix_task_finished_at", "finished_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    cwd: str | None = Field(default=None, max_length=1000)
    repo: str | None = Field(default=None, max_length=1000, index=True)
    base_ref: str | None = Field(default=None, max_length=200)
    model: str = Field(max_length=100)
    max_turns: int
    priority: str = Field(default="default", max_length=10)
    permission_mode: str = Field(default="acceptEdits", max_length=30)
    allowed_tools: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    timeout_s: int | None = None
    max_attempts: int = 3
    status: str = Field(default=TaskStatus.QUEUED, max_length=20, index=True)
    status_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts_count: int = 0
    runs: int = 1  # enqueues so far (first run, manual retries, follow-ups): names the RQ job
    pending_kind: str = Field(default="run", max_length=20)  # what the next run is
    pending_prompt: str | None = Field(default=None, sa_column=Column(Text))  # follow-up text
    session_id: str | None = Field(default=None, max_length=100)
    workspace: str | None = Field(default=None, max_length=1000)
    result_text: str | None = Field(default=None, sa_column=Column(Text))
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    num_turns: int = 0
    duration_ms: int = 0
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    diff: str | None = Field(default=None, sa_column=Column(Text))
    demo: bool = False


class Attempt(SQLModel, table=True):
    """One run of a task by a worker: the first run, a retry, or a follow-up prompt."""

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    number: int
    kind: str = Field(default="run", max_length=20)  # run | retry | follow_up
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=TaskStatus.RUNNING, max_length=20)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    worker: str | None = Field(default=None, max_length=200)
    rq_job_id: str | None = Field(default=None, max_length=100)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    session_id: str | None = Field(default=None, max_length=100)
    exit_code: int | None = None
    cost_usd: float = 0.0  # this attempt's own, not its session's so far
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    num_turns: int = 0
    duration_ms: int = 0


class TaskEvent(SQLModel, table=True):
    """One typed event of a task (see app/events.py), kept after the Redis stream is trimmed."""

    __table_args__ = (Index("ix_taskevent_task_stream", "task_id", "stream_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id")
    attempt: int = 0
    stream_id: str = Field(max_length=40)  # the Redis stream entry id: orders and de-duplicates
    type: str = Field(max_length=30)
    ts: float
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class MetricSample(SQLModel, table=True):
    """Queue depth, running tasks and workers at one moment (app/metrics.py samples them)."""

    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(default_factory=utcnow, index=True)
    queued: int = 0
    running: int = 0
    scheduled: int = 0
    workers: int = 0
    busy_workers: int = 0


class Role:
    """What an account may do: admins everything, members submit and cancel, viewers only look."""

    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"
    ALL = (ADMIN, MEMBER, VIEWER)


class User(SQLModel, table=True):
    """An account: signs in to the web UI with a password, owns API tokens."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=255)  # argon2id, never shown anywhere
    role: str = Field(default=Role.MEMBER, max_length=10)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    """A scoped API token; only its SHA-256 is stored (the token is shown once, at creation)."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16)  # the first characters, to recognise a token in a list
    token_hash: str = Field(max_length=64, unique=True, index=True)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A signed-in browser; the cookie holds the secret, the row only its SHA-256."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class TaskDependency(SQLModel, table=True):
    """Task `task_id` starts only after task `depends_on_id` has succeeded (issue 5)."""

    task_id: int = Field(foreign_key="task.id", primary_key=True)
    depends_on_id: int = Field(foreign_key="task.id", primary_key=True, index=True)


class Schedule(SQLModel, table=True):
    """A task to submit at a time (`run_at`) or on a cron expression (`cron`, read in the IANA
    time zone `timezone`, so "0 9 * * *" in Europe/Paris stays 09:00 there across DST changes).

    `template` is a TaskCreate as JSON. The worker pool fires a due schedule by moving
    `next_run_at` forward with a conditional update in the same transaction that inserts the task,
    so exactly one host fires each run.
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    template: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    run_at: datetime | None = None
    cron: str | None = Field(default=None, max_length=100)
    timezone: str = Field(default="UTC", max_length=64)
    enabled: bool = True
    next_run_at: datetime | None = Field(default=None, index=True)
    last_run_at: datetime | None = None
    last_task_id: int | None = None
    runs_count: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class QueuePause(SQLModel, table=True):
    """A paused priority queue (a row per paused queue; workers skip its jobs)."""

    name: str = Field(primary_key=True, max_length=50)
    paused_at: datetime = Field(default_factory=utcnow)
