"""The one place tasks are created, enqueued, cancelled, retried, continued and listed.

The UI state and the REST API both call these functions; the workers call the `record_*` ones.
Status changes are conditional updates (`WHERE status IN ...`) so a late writer can never move a
finished task back.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from redis.exceptions import RedisError
from sqlalchemy import bindparam, delete, func, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app import live
from app.db import aware, get_read_engine, session_scope
from app.events import Event, StatusEvent
from app.models import (
    Attempt,
    QueuePause,
    Schedule,
    Task,
    TaskDependency,
    TaskEvent,
    TaskStatus,
    utcnow,
)
from app.queue import enqueue_task, get_redis, release_global_gate
from app.schemas import (
    AttemptOut,
    BulkResult,
    FollowUpCreate,
    Page,
    QueueControlOut,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    TaskCreate,
    TaskEventOut,
    TaskOut,
    TaskSummary,
    localize,
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

    A task with dependencies (`depends_on`) waits, queued, until they all succeeded (see
    `dispatch`). If Redis refuses the job, the rows are removed again and QueueUnavailable is
    raised.

    A task with none has its `queued` event stored in the transaction that stores the task (one
    commit per create), under a stream id chosen here, then published under that id in the Redis
    transaction that queues the job: the first event of its stream, ahead of anything a worker
    publishes.
    """
    values = new_task_values(data)
    queued = StatusEvent(status=TaskStatus.QUEUED, reason=None)
    first_id = f"{int(queued.ts * 1000)}-0"
    with session_scope() as session:
        check_dependencies(session, data.depends_on)
        # Core, not the ORM's unit of work: ~0.2 ms less a create (bench/api_profile.py)
        task_id = session.execute(_INSERT_TASK, values).scalar_one()
        add_dependencies(session, task_id, data.depends_on)
        if not data.depends_on:
            session.execute(insert(TaskEvent.__table__), event_rows(task_id, [(first_id, queued)]))
    try:
        if data.depends_on:
            state = dispatch(task_id)
        else:  # nothing to wait for: the event and the job go to Redis in one transaction
            pipe = get_redis().pipeline()
            pipe.multi()  # RQ adds its commands to a pipeline in MULTI
            live.publish_on(pipe, task_id, queued, first_id=first_id)
            enqueue_task(
                task_id,
                values["priority"],
                values["runs"],
                values["max_attempts"],
                repo=values["repo"],
                pipeline=pipe,
            )
            state = "enqueued"
    except Exception as exc:
        with session_scope() as session:
            session.exec(delete(TaskDependency).where(col(TaskDependency.task_id) == task_id))
            session.exec(delete(TaskEvent).where(col(TaskEvent.task_id) == task_id))
            session.exec(delete(Task).where(col(Task.id) == task_id))
        try:
            get_redis().delete(live.task_stream(task_id))
        except RedisError:
            pass
        raise QueueUnavailable(f"the queue is unavailable: {type(exc).__name__}") from exc
    if not data.depends_on:
        return TaskOut.model_validate({**values, "id": task_id})
    if state != TaskStatus.FAILED:
        publish_status(task_id, TaskStatus.QUEUED, get_task(task_id).status_reason)
    return get_task(task_id)


_INSERT_TASK = insert(Task.__table__).returning(Task.__table__.c.id)
# The model's defaults (`id` is the database's): values, and factories called per task.
_TASK_DEFAULTS = {
    name: field.default
    for name, field in Task.model_fields.items()
    if name != "id" and field.default_factory is None
}
_TASK_FACTORIES = {
    name: field.default_factory
    for name, field in Task.model_fields.items()
    if field.default_factory is not None
}


def new_task_values(data: TaskCreate) -> dict[str, Any]:
    """The column values of a new Task row for a validated TaskCreate: the model's defaults,
    the settings' defaults, the task's own values."""
    settings = get_settings()
    values = {**_TASK_DEFAULTS, **{name: make() for name, make in _TASK_FACTORIES.items()}}
    values.update(
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
    return values


def new_task_row(data: TaskCreate) -> Task:
    """The Task row (not yet stored) of a validated TaskCreate."""
    return Task(**new_task_values(data))


# TaskOut's columns by primary key, as plain values: no ORM object, identity map or commit
# (~0.15 ms less per GET /tasks/{id} than session.get + from_attributes; bench/api_profile.py).
_TASK_OUT_BY_ID = select(*(Task.__table__.c[name] for name in TaskOut.model_fields)).where(
    Task.__table__.c.id == bindparam("task_id")
)


def get_task(task_id: int) -> TaskOut:
    """One task, or TaskNotFound."""
    with get_read_engine().connect() as conn:
        row = conn.execute(_TASK_OUT_BY_ID, {"task_id": task_id}).mappings().first()
    if row is None:
        raise TaskNotFound(task_id)
    return TaskOut.model_validate(dict(row))


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
    record_events(task_id, [(publish_event(task_id, event), event)])
    if status in TaskStatus.TERMINAL:
        settle_dependents(task_id)


LOCAL_SEQ_BASE = 1_000_000  # local stream ids sort after Redis's ids of the same millisecond
_local_seq = itertools.count(1)
PUBLISH_RETRY_S = (0.2, 0.5, 1.0, 2.0)


def publish_event(task_id: int, event: Event) -> str:
    """XADD an event to its task's stream and return the stream id, riding out a short Redis
    outage (a restart). If Redis stays away, return a local id of the same "ms-seq" shape, so
    the database still keeps the event in order (the live page misses it; the task page reads
    the database)."""
    retried = False
    for delay in (*PUBLISH_RETRY_S, None):
        try:
            # A restart can take the XADD and lose its reply: never add the same event twice.
            if retried and (stream_id := _published_id(task_id, event)):
                return stream_id
            return live.publish(task_id, event)
        except RedisError:
            retried = True
            if delay is None:
                break
            time.sleep(delay)
    log.warning(
        "task %s: Redis unreachable, %s event kept in the database only", task_id, event.type
    )
    return f"{int(time.time() * 1000)}-{LOCAL_SEQ_BASE + next(_local_seq)}"


def _published_id(task_id: int, event: Event) -> str | None:
    """The stream id of this very event if it is among the stream's last entries (its payload,
    timestamp included, is unique)."""
    payload = event.model_dump_json()
    for entry_id, fields in get_redis().xrevrange(live.task_stream(task_id), count=50):
        raw = fields.get(b"e") or fields.get("e")
        if raw is not None and (raw.decode() if isinstance(raw, bytes) else raw) == payload:
            return entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return None


def backfill_events(task_id: int) -> int:
    """Store the events the task's Redis stream has and the database lacks (a worker killed
    between publishing an event and storing it); returns how many."""
    try:
        entries = live.read(task_id, count=get_settings().stream_maxlen)
    except RedisError:
        return 0
    if not entries:
        return 0
    with session_scope() as session:
        have = set(
            session.exec(select(TaskEvent.stream_id).where(col(TaskEvent.task_id) == task_id))
        )
    missing = [(sid, ev) for sid, ev in entries if sid not in have and ev.type != "text_delta"]
    record_events(task_id, missing)
    return len(missing)


def event_rows(task_id: int, events: Iterable[tuple[str, Event]]) -> list[dict[str, Any]]:
    """TaskEvent rows (plain values) of published events."""
    return [
        {
            "task_id": task_id,
            "attempt": event.attempt,
            "stream_id": stream_id,
            "type": event.type,
            "ts": event.ts,
            "data": event.model_dump(exclude={"type", "ts", "attempt"}),
        }
        for stream_id, event in events
    ]


def record_events(task_id: int, events: Iterable[tuple[str, Event]]) -> None:
    """Store published events (idempotent: a stream id is stored once).

    One INSERT of plain rows (no ORM objects: an append-only table needs no unit of work).
    """
    rows = event_rows(task_id, events)
    if not rows:
        return
    try:
        with session_scope() as session:
            session.execute(insert(TaskEvent), rows)
    except IntegrityError:
        for row in rows:  # some were stored already (a retried batch): store the rest one by one
            try:
                with session_scope() as session:
                    session.execute(insert(TaskEvent), [row])
            except IntegrityError:
                pass


def transition(task_id: int, from_statuses: Sequence[str], to_status: str, **values: Any) -> bool:
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
                release_global_gate(job, cancelled=True)  # the second gate, which RQ does not know
        except (NoSuchJobError, InvalidJobOperation):
            pass
    backfill_events(task_id)  # the run's newest usage events, published but not stored yet
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


USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


def close_open_attempts(task_id: int, status: str, reason: str) -> None:
    """End every attempt of a task still marked running (cancelled, its worker lost, handed
    back). Such an attempt has no result, but it did spend: it keeps the tokens and estimated
    cost of its newest stored usage event, and the task's totals count them."""
    with session_scope() as session:
        attempts = session.exec(
            select(Attempt).where(
                col(Attempt.task_id) == task_id, col(Attempt.status) == TaskStatus.RUNNING
            )
        ).all()
        for attempt in attempts:
            attempt.status, attempt.reason, attempt.finished_at = status, reason, utcnow()
            for name, value in usage_so_far(task_id, attempt.number).items():
                setattr(attempt, name, value)
            session.add(attempt)
    if attempts:
        settle_usage(task_id)


def usage_so_far(task_id: int, attempt: int) -> dict[str, Any]:
    """An attempt's tokens and estimated cost as its newest stored usage event has them, for an
    attempt that ended without a result ({} if it had none)."""
    with session_scope() as session:
        usage = session.exec(
            select(TaskEvent.data)
            .where(
                col(TaskEvent.task_id) == task_id,
                col(TaskEvent.attempt) == attempt,
                col(TaskEvent.type) == "usage",
            )
            .order_by(col(TaskEvent.id).desc())
            .limit(1)
        ).first()
    if not usage:
        return {}
    return {
        "cost_usd": float(usage.get("cost_usd") or 0.0),
        **{name: int(usage.get(name) or 0) for name in USAGE_FIELDS},
    }


def usage_totals(task_id: int) -> dict[str, Any]:
    """The task's cost and tokens: the sums over its attempts (each attempt's own share)."""
    columns = [col(Attempt.cost_usd), *(col(getattr(Attempt, name)) for name in USAGE_FIELDS)]
    with session_scope() as session:
        sums = session.exec(
            select(*(func.coalesce(func.sum(c), 0) for c in columns)).where(
                col(Attempt.task_id) == task_id
            )
        ).one()
    tokens = {name: int(value) for name, value in zip(USAGE_FIELDS, sums[1:], strict=True)}
    return {"cost_usd": float(sums[0]), **tokens}


def settle_usage(task_id: int) -> None:
    """Store on the task the sums of its attempts' cost and tokens (`usage_totals`)."""
    with session_scope() as session:
        session.exec(update(Task).where(col(Task.id) == task_id).values(**usage_totals(task_id)))


def session_cost(task_id: int, session_id: str | None) -> float:
    """What a task's attempts in one Claude session cost so far (a follow-up continues it)."""
    if not session_id:
        return 0.0
    with session_scope() as session:
        total = session.exec(
            select(func.coalesce(func.sum(Attempt.cost_usd), 0.0)).where(
                col(Attempt.task_id) == task_id, col(Attempt.session_id) == session_id
            )
        ).one()
    return float(total)


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
    publish_status(task_id, TaskStatus.QUEUED, reason)
    dispatch(task_id)
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


# --- Reads for the dashboard (issue 6): task list pages, queue and worker figures, bulk actions.

TASK_SORTS = ("newest", "oldest", "cost", "duration")


def browse_tasks(
    status: str | None = None,
    priority: str | None = None,
    repo: str | None = None,
    text: str | None = None,
    sort: str = "newest",
    limit: int = 25,
    cursor: str | None = None,
) -> Page[TaskOut]:
    """One page of the task list, filtered and sorted, with keyset pagination.

    `cursor` is the `next_cursor` of the previous page ("id" or "value:id"): each page is an index
    range scan (see migration 0003), so page 4,000 costs what page 1 costs. `total` counts every
    task that matches the filters.
    """
    limit = max(1, min(limit, 200))
    filters = task_filters(status, priority, repo, text)
    query = task_page_query(filters, sort, cursor).limit(limit + 1)
    with session_scope() as session:
        rows = list(session.exec(query))
        total = session.exec(select(func.count()).select_from(Task).where(*filters)).one()
    items = [TaskOut.model_validate(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        key = SORT_KEYS.get(sort)
        next_cursor = str(last.id) if key is None else f"{getattr(last, key)}:{last.id}"
    return Page[TaskOut](items=items, total=total, next_cursor=next_cursor)


SORT_KEYS = {"cost": "cost_usd", "duration": "duration_ms"}


def task_filters(
    status: str | None, priority: str | None, repo: str | None, text: str | None
) -> list[Any]:
    """WHERE clauses of the task list's filters."""
    filters = []
    if status:
        filters.append(col(Task.status) == status)
    if priority:
        filters.append(col(Task.priority) == priority)
    if repo:
        filters.append(col(Task.repo) == repo)
    if text:
        like = f"%{text}%"
        filters.append(or_(col(Task.title).ilike(like), col(Task.prompt).ilike(like)))
    return filters


def task_page_query(filters: list[Any], sort: str, cursor: str | None) -> Any:
    """The SELECT of one task list page after `cursor`, in `sort` order (without LIMIT)."""
    from sqlalchemy import tuple_

    if sort not in TASK_SORTS:
        raise ValueError(f"sort must be one of {', '.join(TASK_SORTS)}")
    query = select(Task).where(*filters)
    if sort == "oldest":
        query = query.order_by(col(Task.id).asc())
        return query.where(col(Task.id) > int(cursor)) if cursor else query
    if sort == "newest":
        query = query.order_by(col(Task.id).desc())
        return query.where(col(Task.id) < int(cursor)) if cursor else query
    key = getattr(Task, SORT_KEYS[sort])
    query = query.order_by(col(key).desc(), col(Task.id).desc())
    if cursor:
        value, _, last_id = cursor.rpartition(":")
        query = query.where(tuple_(key, Task.id) < (type_of(key)(value), int(last_id)))
    return query


def type_of(column: Any) -> type:
    """The Python type of a numeric sort column (float for cost, int for duration)."""
    return float if column.key == "cost_usd" else int


def task_repos(limit: int = 50) -> list[str]:
    """Repositories tasks ran in (for the list's filter and the form's recent choices)."""
    with session_scope() as session:
        rows = session.exec(
            select(Task.repo).where(col(Task.repo).is_not(None)).distinct().limit(limit)
        ).all()
    return sorted(r for r in rows if r)


def recent_places(limit: int = 8) -> list[str]:
    """The most recently used repositories and directories, newest first, without repeats."""
    with session_scope() as session:
        rows = session.exec(
            select(Task.repo, Task.cwd)
            .where(or_(col(Task.repo).is_not(None), col(Task.cwd).is_not(None)))
            .order_by(col(Task.id).desc())
            .limit(200)
        ).all()
    places: list[str] = []
    for repo, cwd in rows:
        place = repo or cwd
        if place and place not in places:
            places.append(place)
    return places[:limit]


def queue_stats() -> list[dict[str, Any]]:
    """Per priority queue: queued, running, failed, scheduled jobs and the oldest job's wait (s)."""
    from rq.job import Job

    from app.queue import PRIORITIES, get_queue

    redis = get_redis()
    out = []
    now = utcnow()
    for priority in PRIORITIES:
        queue = get_queue(priority, redis)
        wait = 0.0
        first = queue.get_job_ids(0, 1)
        if first and redis.exists(Job.key_for(first[0])):
            job = Job.fetch(first[0], connection=redis)
            if job is not None and job.enqueued_at:
                enqueued = job.enqueued_at.replace(tzinfo=now.tzinfo)
                wait = max(0.0, (now - enqueued).total_seconds())
        out.append(
            {
                "name": queue.name,
                "priority": priority,
                "queued": queue.count,
                "running": queue.started_job_registry.count,
                "failed": queue.failed_job_registry.count,
                "scheduled": queue.scheduled_job_registry.count + queue.deferred_job_registry.count,
                "oldest_wait_s": wait,
            }
        )
    return out


def worker_stats() -> list[dict[str, Any]]:
    """The live RQ workers: name, state, the task it runs, heartbeat age (s), memory (MB)."""
    import socket

    from rq import Worker

    now = utcnow()
    out = []
    for worker in Worker.all(connection=get_redis()):
        job_id = worker.get_current_job_id() or ""
        task_id = int(job_id.split("-")[1]) if job_id.startswith("task-") else None
        beat = worker.last_heartbeat
        age = (now - beat.replace(tzinfo=now.tzinfo)).total_seconds() if beat else None
        memory = None
        if worker.hostname == socket.gethostname() and worker.pid:
            memory = _rss_mb(worker.pid)
        out.append(
            {
                "name": worker.name,
                "state": str(worker.get_state()),
                "task_id": task_id,
                "job_id": job_id,
                "heartbeat_age_s": age,
                "memory_mb": memory,
                "pid": worker.pid,
                "queues": worker.queue_names(),
                "successful": worker.successful_job_count,
                "failed": worker.failed_job_count,
            }
        )
    return sorted(out, key=lambda w: w["name"])


def _rss_mb(pid: int) -> float | None:
    """Resident memory of a local process and its children (the work horse), in MB."""
    try:
        total = 0
        pids = [pid]
        children = f"/proc/{pid}/task/{pid}/children"
        with open(children) as handle:
            pids += [int(p) for p in handle.read().split()]
        for one in pids:
            with open(f"/proc/{one}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return round(total / 1024, 1)
    except (OSError, ValueError):
        return None


# --- REST API reads and deletes (issue 7): a lean list for scripts, and removing old tasks.

# TaskSummary's columns as table columns: the list runs as Core on a connection (no ORM loading,
# no session, no commit), like `get_task`.
_TASK = Task.__table__.c
_SUMMARY_NAMES = tuple(TaskSummary.model_fields)
_SUMMARY_COLUMNS = tuple(_TASK[name] for name in _SUMMARY_NAMES)


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
    query = select(*_SUMMARY_COLUMNS).order_by(_TASK.id.desc()).limit(limit + 1)
    if status:
        query = query.where(_TASK.status == status)
    if priority:
        query = query.where(_TASK.priority == priority)
    if repo:
        query = query.where(_TASK.repo == repo)
    if text:
        like = f"%{text}%"
        query = query.where(or_(_TASK.title.ilike(like), _TASK.prompt.ilike(like)))
    if before_id:
        query = query.where(_TASK.id < before_id)
    with get_read_engine().connect() as conn:
        rows = conn.execute(query).all()
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    # One validation of the whole page, of plain dicts (pydantic reads a RowMapping field by
    # field through Python's Mapping.get): ~35% less CPU than a model per row.
    items = [dict(zip(_SUMMARY_NAMES, row, strict=True)) for row in rows[:limit]]
    return Page[TaskSummary].model_validate({"items": items, "next_cursor": next_cursor})


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


def get_task_diff(task_id: int) -> str | None:
    """The unified diff a task's git workspace ended with (None when it has none)."""
    with session_scope() as session:
        task = session.get(Task, task_id)
        return task.diff if task else None


# --- Task engine (issue 5): dependencies, queue controls, schedules ------------------------------


class ScheduleNotFound(LookupError):
    """No schedule has that id."""


def _field_error(field: str, message: str, value: Any) -> ValidationError:
    """A pydantic ValidationError naming one field (the API answers it with HTTP 422)."""
    return ValidationError.from_exception_data(
        "TaskCreate",
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", message), loc=(field,), input=value
            )
        ],
    )


def check_dependencies(session: Any, ids: Sequence[int]) -> None:
    """Refuse dependencies on tasks that do not exist or already failed or were cancelled."""
    if not ids:
        return
    rows = dict(session.exec(select(Task.id, Task.status).where(col(Task.id).in_(set(ids)))).all())
    for task_id in ids:
        if task_id not in rows:
            raise _field_error("depends_on", f"task {task_id} does not exist", list(ids))
        if rows[task_id] in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise _field_error(
                "depends_on", f"task {task_id} is {rows[task_id]}: it will never succeed", list(ids)
            )


def add_dependencies(session: Any, task_id: int, ids: Sequence[int]) -> None:
    """Record that `task_id` waits for each task of `ids`."""
    session.add_all(TaskDependency(task_id=task_id, depends_on_id=d) for d in sorted(set(ids)))


def dependencies_of(task_id: int) -> list[tuple[int, str]]:
    """(id, status) of the tasks a task waits for."""
    with session_scope() as session:
        return list(
            session.exec(
                select(Task.id, Task.status)
                .join(TaskDependency, col(TaskDependency.depends_on_id) == col(Task.id))
                .where(col(TaskDependency.task_id) == task_id)
                .order_by(col(Task.id))
            ).all()
        )


def dependents_of(task_id: int) -> list[int]:
    """Ids of the tasks that wait for this one."""
    with session_scope() as session:
        return list(
            session.exec(
                select(TaskDependency.task_id).where(col(TaskDependency.depends_on_id) == task_id)
            ).all()
        )


def dispatch(task_id: int) -> str:
    """Move a queued task on: enqueue it once all its dependencies succeeded, fail it if one of
    them failed or was cancelled, else leave it waiting (queued, with the reason).

    Returns "enqueued", "waiting", "failed" or "skipped" (not queued, or its job is already in
    Redis). Safe to call again: the reconciler and every terminal status call it.
    """
    from app.queue import job_is_live

    with session_scope() as session:
        task = session.get(Task, task_id)
        if task is None or task.status != TaskStatus.QUEUED:
            return "skipped"
        run, priority, repo = task.runs, task.priority, task.repo
        attempts_left = max(1, task.max_attempts - _attempts_in_run(session, task))
    deps = dependencies_of(task_id)
    broken = [(d, st) for d, st in deps if st in (TaskStatus.FAILED, TaskStatus.CANCELLED)]
    if broken:
        dep, dep_status = broken[0]
        reason = f"dependency #{dep} {dep_status}: not run"
        if transition(
            task_id,
            [TaskStatus.QUEUED],
            TaskStatus.FAILED,
            status_reason=reason,
            finished_at=utcnow(),
        ):
            publish_status(task_id, TaskStatus.FAILED, reason)
            return "failed"
        return "skipped"
    waiting = [d for d, st in deps if st != TaskStatus.SUCCEEDED]
    if waiting:
        reason = "waiting for " + ", ".join(f"#{d}" for d in waiting)
        transition(task_id, [TaskStatus.QUEUED], TaskStatus.QUEUED, status_reason=reason)
        return "waiting"
    from app.queue import job_id_for

    if job_is_live(job_id_for(task_id, run)):
        return "skipped"
    if deps:
        transition(task_id, [TaskStatus.QUEUED], TaskStatus.QUEUED, status_reason=None)
    enqueue_task(task_id, priority, run, attempts_left, repo=repo)
    return "enqueued"


def attempts_left(task_id: int) -> int:
    """Attempts the task's current run may still make (0 when the run used them all)."""
    with session_scope() as session:
        task = session.get(Task, task_id)
        if task is None:
            return 0
        return max(0, task.max_attempts - _attempts_in_run(session, task))


def _attempts_in_run(session: Any, task: Task) -> int:
    """Attempts already made in the task's current run (a manual retry starts a fresh count)."""
    if not task.attempts_count:
        return 0
    from app.queue import job_id_for

    return session.exec(
        select(func.count())
        .select_from(Attempt)
        .where(
            col(Attempt.task_id) == task.id,
            col(Attempt.rq_job_id) == job_id_for(task.id, task.runs),
        )
    ).one()


def settle_dependents(task_id: int) -> None:
    """A task ended: start, or fail, the queued tasks that waited for it."""
    for dependent in dependents_of(task_id):
        try:
            dispatch(dependent)
        except Exception:  # Redis away: the reconciler dispatches it later
            log.warning("could not dispatch task %s", dependent, exc_info=True)


# Queues: pause, resume, requeue failed tasks, figures for the queues page.


def _priority(priority: str) -> str:
    from app.queue import PRIORITIES

    if priority not in PRIORITIES:
        raise _field_error("priority", f"unknown queue {priority!r}", priority)
    return priority


def set_queue_paused(priority: str, paused: bool) -> QueueControlOut:
    """Pause a priority queue (running jobs go on, queued ones wait) or resume it: the database
    row first (the truth), then Redis, which the workers read. The API and the queues page call
    this one function."""
    from app import queue as rq_queue

    name = rq_queue.queue_name(_priority(priority))
    with session_scope() as session:
        if not paused:
            session.exec(delete(QueuePause).where(col(QueuePause.name) == name))
        elif session.get(QueuePause, name) is None:
            session.add(QueuePause(name=name))
    rq_queue.set_queue_paused(name, paused)
    rq_queue.settle_paused_queues()  # parked jobs give their rate-limit slots to open queues
    return queue_overview(priority)


def pause_queue(priority: str) -> QueueControlOut:
    """Stop starting jobs of a priority queue (see `set_queue_paused`)."""
    return set_queue_paused(priority, True)


def resume_queue(priority: str) -> QueueControlOut:
    """Start jobs of a paused queue again (see `set_queue_paused`)."""
    return set_queue_paused(priority, False)


def paused_queues() -> list[str]:
    """Names of the paused queues (the database's view, which the workers follow)."""
    with session_scope() as session:
        return sorted(session.exec(select(QueuePause.name)).all())


def queue_overview(priority: str | None = None) -> Any:
    """Figures of one priority queue (QueueControlOut), or of all of them (a list)."""
    from rq.rate_limit import RateLimitRegistry

    from app.queue import PRIORITIES, get_queue

    redis = get_redis()
    paused = set(paused_queues())
    limited: dict[str, int] = {}
    for registry in RateLimitRegistry.all(redis):
        for job_id in registry.get_rate_limited_job_ids():
            origin = redis.hget(f"rq:job:{job_id}", "origin")
            if origin:
                name = origin.decode()
                limited[name] = limited.get(name, 0) + 1
    with session_scope() as session:
        failed = dict(
            session.exec(
                select(Task.priority, func.count())
                .where(Task.status == TaskStatus.FAILED)
                .group_by(Task.priority)
            ).all()
        )
    out = []
    for one in [_priority(priority)] if priority else PRIORITIES:
        queue = get_queue(one, redis)
        out.append(
            QueueControlOut(
                name=queue.name,
                priority=one,
                paused=queue.name in paused,
                queued=queue.count,
                running=queue.started_job_registry.count,
                scheduled=queue.scheduled_job_registry.count,
                rate_limited=limited.get(queue.name, 0),
                failed_tasks=failed.get(one, 0),
            )
        )
    return out[0] if priority else out


def requeue_failed(priority: str | None = None, limit: int = 500) -> BulkResult:
    """Retry every failed task (of one priority queue, if given), oldest first."""
    query = select(Task.id).where(Task.status == TaskStatus.FAILED).order_by(col(Task.id))
    if priority:
        query = query.where(Task.priority == _priority(priority))
    with session_scope() as session:
        ids = list(session.exec(query.limit(max(1, min(limit, 5000)))).all())
    return _bulk(ids, retry_task)


def cancel_many(task_ids: Iterable[int]) -> BulkResult:
    """Cancel several queued or running tasks."""
    return _bulk(task_ids, cancel_task)


def retry_many(task_ids: Iterable[int]) -> BulkResult:
    """Retry several failed or cancelled tasks."""
    return _bulk(task_ids, retry_task)


def _bulk(task_ids: Iterable[int], action: Any) -> BulkResult:
    result = BulkResult()
    for task_id in task_ids:
        try:
            action(task_id)
            result.done.append(task_id)
        except TaskNotFound:
            result.skipped[task_id] = "not found"
        except InvalidTransition as exc:
            result.skipped[task_id] = str(exc)
    return result


# Schedules: rows fired by the worker pool (worker/scheduler.py).


def next_run_after(
    cron: str | None,
    run_at: datetime | None,
    after: datetime,
    last_run_at: datetime | None = None,
    timezone: str = "UTC",
) -> datetime | None:
    """When a schedule fires next (UTC): its cron's next time after `after`, or its one `run_at`
    if it has not fired at (or after) that time yet."""
    if cron:
        return next_cron_time(cron, after, timezone)
    if run_at is not None and (last_run_at is None or aware(run_at) > aware(last_run_at)):
        return aware(run_at).astimezone(UTC)
    return None


def next_cron_time(cron: str, after: datetime, timezone: str = "UTC") -> datetime:
    """The cron's next time after `after`, the cron read on the wall clock of `timezone`.

    Across DST changes it does what cron does: a time the clocks skip (02:30 on the spring-forward
    night in Europe/Paris) fires when the clocks jump (03:00); a time they repeat (02:30 on the
    fall-back night) fires once, at its first occurrence, unless the hour field is a wildcard
    ("0 * * * *" fires every real hour, both 02:00 included).
    """
    from zoneinfo import ZoneInfo

    from croniter import croniter

    zone = ZoneInfo(timezone)
    times = croniter(cron, aware(after).astimezone(zone))
    every_hour = cron.split()[1].startswith("*")
    for _ in range(4):  # a repeated time is skipped at most once in a row
        candidate = times.get_next(datetime)
        if every_hour or not _repeated_wall_time(candidate, zone):
            break
    return candidate.astimezone(UTC)


def _repeated_wall_time(moment: datetime, zone: Any) -> bool:
    """Whether `moment` is the second occurrence of its wall-clock time (clocks set back)."""
    wall = moment.replace(tzinfo=None)
    first = wall.replace(tzinfo=zone, fold=0).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    return first != second and moment.utcoffset() == second and first > second


def create_schedule(data: ScheduleCreate) -> ScheduleOut:
    """Store a schedule and compute its first run."""
    now = utcnow()
    row = Schedule(
        name=data.name,
        template=data.task.model_dump(mode="json", exclude_defaults=True),
        run_at=data.run_at,
        cron=data.cron,
        timezone=data.timezone,
        enabled=data.enabled,
        next_run_at=next_run_after(data.cron, data.run_at, now, timezone=data.timezone),
    )
    with session_scope() as session:
        session.add(row)
    return ScheduleOut.model_validate(row)


def get_schedule(schedule_id: int) -> ScheduleOut:
    """One schedule, or ScheduleNotFound."""
    with session_scope() as session:
        row = session.get(Schedule, schedule_id)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        return ScheduleOut.model_validate(row)


def list_schedules() -> list[ScheduleOut]:
    """Every schedule, soonest next run first (paused and finished ones last)."""
    with session_scope() as session:
        rows = session.exec(select(Schedule).order_by(col(Schedule.id))).all()
        out = [ScheduleOut.model_validate(r) for r in rows]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(out, key=lambda s: (not s.enabled, aware(s.next_run_at) or far, s.id))


def update_schedule(schedule_id: int, data: ScheduleUpdate) -> ScheduleOut:
    """Change a schedule (name, task, time or cron, enabled) and recompute its next run."""
    changes = data.model_dump(exclude_unset=True)
    with session_scope() as session:
        row = session.get(Schedule, schedule_id)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        if "name" in changes:
            row.name = data.name
        if data.task is not None:
            row.template = data.task.model_dump(mode="json", exclude_defaults=True)
        if data.timezone:
            row.timezone = data.timezone
        if data.cron:
            row.cron, row.run_at = data.cron, None
        elif data.run_at:
            row.run_at, row.cron = localize(data.run_at, row.timezone), None
        if data.enabled is not None:
            row.enabled = data.enabled
        row.next_run_at = next_run_after(
            row.cron, row.run_at, utcnow(), row.last_run_at, timezone=row.timezone
        )
        session.add(row)
        return ScheduleOut.model_validate(row)


def pause_schedule(schedule_id: int) -> ScheduleOut:
    """Stop a schedule from firing until it is resumed."""
    return update_schedule(schedule_id, ScheduleUpdate(enabled=False))


def resume_schedule(schedule_id: int) -> ScheduleOut:
    """Let a paused schedule fire again; a cron's next run is counted from now."""
    return update_schedule(schedule_id, ScheduleUpdate(enabled=True))


def delete_schedule(schedule_id: int) -> None:
    """Remove a schedule (the tasks it made stay)."""
    with session_scope() as session:
        row = session.get(Schedule, schedule_id)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        session.delete(row)
