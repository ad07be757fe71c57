"""The one place tasks are created, enqueued, cancelled, retried, continued and listed.

The UI state and the REST API both call these functions; the workers call the `record_*` ones.
Status changes are conditional updates (`WHERE status IN ...`) so a late writer can never move a
finished task back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app import live
from app.db import session_scope
from app.events import Event, StatusEvent
from app.models import Attempt, Task, TaskEvent, TaskStatus, utcnow
from app.queue import enqueue_task, get_redis
from app.schemas import (
    AttemptOut,
    FollowUpCreate,
    Page,
    TaskCreate,
    TaskEventOut,
    TaskOut,
    TaskSummary,
)
from app.settings import get_settings

log = logging.getLogger(__name__)


class TaskNotFound(LookupError):
    """No task has that id."""


class InvalidTransition(ValueError):
    """The task's status does not allow the action (e.g. retry of a running task)."""


class QueueUnavailable(RuntimeError):
    """Redis could not take the job; nothing was stored."""


def title_of(prompt: str) -> str:
    """A one-line title made from the prompt's first line."""
    first = prompt.strip().splitlines()[0] if prompt.strip() else "task"
    return first[:117] + "..." if len(first) > 120 else first


def create_task(data: TaskCreate) -> TaskOut:
    """Store a validated task as `queued` and put it on its priority queue.

    If Redis refuses the job, the row is removed again and QueueUnavailable is raised.
    """
    settings = get_settings()
    task = Task(
        title=title_of(data.prompt),
        prompt=data.prompt,
        cwd=data.cwd,
        repo=data.repo,
        base_ref=data.base_ref,
        model=data.model or settings.default_model,
        max_turns=data.max_turns or settings.default_max_turns,
        priority=data.priority,
        permission_mode=data.permission_mode,
        allowed_tools=data.allowed_tools,
        timeout_s=data.timeout_s,
        max_attempts=data.max_attempts or settings.max_attempts,
        demo=settings.demo_mode,
    )
    with session_scope() as session:
        session.add(task)
    try:
        enqueue_task(task.id, task.priority, 1, task.max_attempts)
    except Exception as exc:
        with session_scope() as session:
            session.delete(session.get(Task, task.id))
        raise QueueUnavailable(f"the queue is unavailable: {type(exc).__name__}") from exc
    publish_status(task.id, TaskStatus.QUEUED, None)
    return TaskOut.model_validate(task)


def get_task(task_id: int) -> TaskOut:
    """One task, or TaskNotFound."""
    with session_scope() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return TaskOut.model_validate(task)


def list_tasks(
    status: str | None = None,
    text: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> Page[TaskOut]:
    """Newest tasks first, filtered; `next_cursor` is the id to pass as `before_id` next."""
    limit = max(1, min(limit, 500))
    query = select(Task).order_by(col(Task.id).desc()).limit(limit + 1)
    if status:
        query = query.where(Task.status == status)
    if text:
        like = f"%{text}%"
        query = query.where(or_(col(Task.title).ilike(like), col(Task.prompt).ilike(like)))
    if before_id:
        query = query.where(col(Task.id) < before_id)
    with session_scope() as session:
        rows = list(session.exec(query))
    items = [TaskOut.model_validate(row) for row in rows[:limit]]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return Page[TaskOut](items=items, next_cursor=next_cursor)


def count_by_status() -> dict[str, int]:
    """How many tasks are in each status (every status present, zero included)."""
    with session_scope() as session:
        rows = session.exec(select(Task.status, func.count()).group_by(Task.status)).all()
    counts = dict.fromkeys(TaskStatus.ALL, 0)
    counts.update({status: n for status, n in rows})
    return counts


def list_attempts(task_id: int) -> list[AttemptOut]:
    """A task's attempts, first first."""
    with session_scope() as session:
        rows = session.exec(
            select(Attempt).where(Attempt.task_id == task_id).order_by(col(Attempt.number))
        ).all()
        return [AttemptOut.model_validate(row) for row in rows]


def list_events(task_id: int, after: str | None = None, limit: int = 1000) -> list[TaskEventOut]:
    """Stored events of a task in stream order, after stream id `after`."""
    query = select(TaskEvent).where(TaskEvent.task_id == task_id)
    with session_scope() as session:
        rows = list(session.exec(query.order_by(col(TaskEvent.id))))
    out = [
        TaskEventOut(stream_id=r.stream_id, attempt=r.attempt, type=r.type, ts=r.ts, data=r.data)
        for r in rows
    ]
    out.sort(key=lambda e: _stream_key(e.stream_id))
    if after:
        key = _stream_key(after)
        out = [e for e in out if _stream_key(e.stream_id) > key]
    return out[:limit]


def _stream_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms or 0), int(seq or 0)


def publish_status(task_id: int, status: str, reason: str | None, attempt: int = 0) -> None:
    """Announce a status change on the task's stream, the global stream and in the database."""
    event = StatusEvent(status=status, reason=reason, attempt=attempt)
    try:
        stream_id = live.publish(task_id, event)
    except Exception:  # Redis down: the database still has the status; the page polls it
        log.warning("could not publish status of task %s", task_id, exc_info=True)
        return
    record_events(task_id, [(stream_id, event)])


def record_events(task_id: int, events: Iterable[tuple[str, Event]]) -> None:
    """Store published events (idempotent: a stream id is stored once)."""
    rows = [
        TaskEvent(
            task_id=task_id,
            attempt=event.attempt,
            stream_id=stream_id,
            type=event.type,
            ts=event.ts,
            data=event.model_dump(exclude={"type", "ts", "attempt"}),
        )
        for stream_id, event in events
    ]
    if not rows:
        return
    try:
        with session_scope() as session:
            session.add_all(rows)
    except IntegrityError:
        for row in rows:  # some were stored already (a retried batch): store the rest one by one
            try:
                with session_scope() as session:
                    session.add(row)
            except IntegrityError:
                pass


def transition(
    task_id: int, from_statuses: Sequence[str], to_status: str, **values: Any
) -> bool:
    """Move a task to `to_status` only if it is in one of `from_statuses`; True if it moved."""
    with session_scope() as session:
        result = session.exec(
            update(Task)
            .where(col(Task.id) == task_id, col(Task.status).in_(list(from_statuses)))
            .values(status=to_status, **values)
        )
        return result.rowcount == 1


def cancel_task(task_id: int) -> TaskOut:
    """Cancel a queued or running task (a running one's claude process group is killed)."""
    from rq.command import send_stop_job_command
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job

    task = get_task(task_id)
    if task.status in TaskStatus.TERMINAL:
        raise InvalidTransition(f"task {task_id} is already {task.status}")
    job_id = current_job_id(task_id)
    reason = "cancelled by user"
    moved = transition(
        task_id, TaskStatus.ACTIVE, TaskStatus.CANCELLED, status_reason=reason, finished_at=utcnow()
    )
    if not moved:
        return get_task(task_id)
    redis = get_redis()
    if job_id:
        try:
            job = Job.fetch(job_id, connection=redis)
            if job.get_status() == "started":
                send_stop_job_command(redis, job_id)
            else:
                job.cancel()
        except (NoSuchJobError, InvalidJobOperation):
            pass
    close_open_attempts(task_id, TaskStatus.CANCELLED, reason)
    publish_status(task_id, TaskStatus.CANCELLED, reason)
    return get_task(task_id)


def current_job_id(task_id: int) -> str | None:
    """The RQ job id of the task's latest run."""
    with session_scope() as session:
        task = session.get(Task, task_id)
        runs = task.runs if task else 0
    from app.queue import job_id_for

    return job_id_for(task_id, runs) if runs else None


def close_open_attempts(task_id: int, status: str, reason: str) -> None:
    """End every attempt of a task still marked running."""
    with session_scope() as session:
        session.exec(
            update(Attempt)
            .where(col(Attempt.task_id) == task_id, col(Attempt.status) == TaskStatus.RUNNING)
            .values(status=status, reason=reason, finished_at=utcnow())
        )


def _requeue(task_id: int, reason: str, kind: str, prompt: str | None = None) -> TaskOut:
    with session_scope() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        if task.status not in TaskStatus.TERMINAL:
            raise InvalidTransition(f"task {task_id} is {task.status}: wait for it to end first")
        if kind == "follow_up" and not task.session_id:
            raise InvalidTransition(f"task {task_id} has no Claude session to continue")
        task.status = TaskStatus.QUEUED
        task.status_reason = reason
        task.finished_at = None
        task.runs += 1
        task.pending_prompt = prompt
        task.pending_kind = kind
        session.add(task)
        run, priority, attempts = task.runs, task.priority, task.max_attempts
    enqueue_task(task_id, priority, run, attempts)
    publish_status(task_id, TaskStatus.QUEUED, reason)
    return get_task(task_id)


def retry_task(task_id: int) -> TaskOut:
    """Run a failed or cancelled task again from its original prompt."""
    return _requeue(task_id, "retry requested", "retry")


def follow_up(task_id: int, data: FollowUpCreate) -> TaskOut:
    """Continue a finished task's Claude session with a new prompt (a new attempt)."""
    return _requeue(task_id, "follow-up", "follow_up", data.prompt)


def stamp(value: datetime | None) -> str:
    """A datetime for display, or an empty string."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


# --- REST API reads and deletes (issue 7): a lean list for scripts, and removing old tasks.

SUMMARY_COLUMNS = (
    Task.id, Task.title, Task.status, Task.priority, Task.model, Task.repo, Task.created_at,
    Task.started_at, Task.finished_at, Task.attempts_count, Task.num_turns, Task.cost_usd,
    Task.duration_ms,
)


def list_task_summaries(
    status: str | None = None,
    priority: str | None = None,
    repo: str | None = None,
    text: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> Page[TaskSummary]:
    """Newest first, only the columns a list shows, keyset-paginated on the id (index scans)."""
    limit = max(1, min(limit, 500))
    query = select(*SUMMARY_COLUMNS).order_by(col(Task.id).desc()).limit(limit + 1)
    if status:
        query = query.where(col(Task.status) == status)
    if priority:
        query = query.where(col(Task.priority) == priority)
    if repo:
        query = query.where(col(Task.repo) == repo)
    if text:
        like = f"%{text}%"
        query = query.where(or_(col(Task.title).ilike(like), col(Task.prompt).ilike(like)))
    if before_id:
        query = query.where(col(Task.id) < before_id)
    with session_scope() as session:
        rows = session.exec(query).all()
    items = [TaskSummary.model_validate(row._mapping) for row in rows[:limit]]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return Page[TaskSummary](items=items, next_cursor=next_cursor)


def delete_task(task_id: int) -> None:
    """Remove a finished task with its attempts, events and live stream; TaskNotFound or
    InvalidTransition (still queued or running: cancel it first)."""
    from sqlalchemy import delete

    with session_scope() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        if task.status not in TaskStatus.TERMINAL:
            raise InvalidTransition(f"task {task_id} is {task.status}: cancel it first")
        session.exec(delete(TaskEvent).where(col(TaskEvent.task_id) == task_id))
        session.exec(delete(Attempt).where(col(Attempt.task_id) == task_id))
        session.delete(task)
    try:
        get_redis().delete(live.task_stream(task_id))
    except Exception:
        log.warning("could not delete the stream of task %s", task_id, exc_info=True)
