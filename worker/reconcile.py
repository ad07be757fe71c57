"""The reconciler: the database is the source of truth, Redis may forget (restart, flush).

One pass (one host at a time, under a Redis lock):
- copies the paused queues from the database to Redis;
- re-enqueues queued tasks whose RQ job is on no queue or registry any more;
- moves on queued tasks that wait for dependencies (see app.service.dispatch);
- ends or re-queues running tasks whose job no longer runs anywhere and whose lease
  (app.queue.TaskLock) nobody holds: "worker lost".

A task is only touched when it was seen missing on two passes at least SUSPECT_AGE apart, so a
job caught between a worker popping it and starting it is never enqueued twice. Workers run a
pass at start and every `reconcile_interval_s`.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlmodel import col, select

from app import service
from app.db import aware, session_scope
from app.models import QueuePause, Task, TaskStatus, utcnow
from app.queue import (
    PAUSED_KEY,
    TaskLock,
    enqueue_task,
    get_redis,
    job_id_for,
    job_is_placed,
    paused_queue_names,
    set_queue_paused,
)

log = logging.getLogger(__name__)
LOCK_KEY = "taskdeck:reconciler:lock"
GRACE = timedelta(seconds=10)  # a task this young may still be on its way into Redis
SUSPECT_AGE_S = 5.0
_suspects: dict[tuple[int, int, str], float] = {}


def sync_paused_queues() -> None:
    """Make Redis's set of paused queues match the database's rows."""
    with session_scope() as session:
        wanted = set(session.exec(select(QueuePause.name)).all())
    redis = get_redis()
    have = paused_queue_names(redis)
    for name in wanted - have:
        set_queue_paused(name, True, redis)
    for name in have - wanted:
        set_queue_paused(name, False, redis)
    if not wanted:
        redis.delete(PAUSED_KEY)


def _confirmed_missing(key: tuple[int, int, str], now: float) -> bool:
    first = _suspects.setdefault(key, now)
    return now - first >= SUSPECT_AGE_S


def reconcile_once() -> dict[str, int]:
    """One pass; returns how many tasks were re-enqueued, dispatched and failed."""
    counts = {"requeued": 0, "dispatched": 0, "failed": 0}
    redis = get_redis()
    if not redis.set(LOCK_KEY, "1", nx=True, ex=60):
        return counts
    try:
        sync_paused_queues()
        _reconcile_tasks(counts)
    finally:
        redis.delete(LOCK_KEY)
    if any(counts.values()):
        log.info("reconciler: %s", counts)
    return counts


def _reconcile_tasks(counts: dict[str, int]) -> None:
    cutoff = utcnow() - GRACE
    now = time.monotonic()
    seen: set[tuple[int, int, str]] = set()
    with session_scope() as session:
        rows = session.exec(
            select(
                Task.id,
                Task.status,
                Task.runs,
                Task.priority,
                Task.repo,
                Task.created_at,
            )
            .where(col(Task.status).in_(TaskStatus.ACTIVE))
            .order_by(col(Task.id))
        ).all()
    for task_id, status, runs, priority, repo, created_at in rows:
        if aware(created_at) > cutoff:
            continue
        if job_is_placed(job_id_for(task_id, runs)):
            continue
        if status == TaskStatus.QUEUED:
            if any(st != TaskStatus.SUCCEEDED for _, st in service.dependencies_of(task_id)):
                if service.dispatch(task_id) == "failed":
                    counts["failed"] += 1
                continue
        elif TaskLock.is_held(task_id):
            continue  # a run holds the lease: it is alive, whatever Redis says of its job
        key = (task_id, runs, status)
        seen.add(key)
        if not _confirmed_missing(key, now):
            continue
        _recover(task_id, status, runs, priority, repo, counts)
    for key in list(_suspects):
        if key not in seen:
            del _suspects[key]


def _recover(
    task_id: int,
    status: str,
    runs: int,
    priority: str,
    repo: str | None,
    counts: dict[str, int],
) -> None:
    """Put a task whose job Redis lost back on its queue, or fail it when no attempt is left."""
    service.backfill_events(task_id)
    if status == TaskStatus.QUEUED:
        reason = "re-enqueued: its job was missing from Redis"
        enqueue_task(task_id, priority, runs, max(1, service.attempts_left(task_id)), repo=repo)
        service.publish_status(task_id, TaskStatus.QUEUED, reason)
        counts["requeued"] += 1
        return
    service.close_open_attempts(task_id, TaskStatus.FAILED, "worker lost")
    left = service.attempts_left(task_id)
    if left > 0:
        reason = "retrying: worker lost"
        if service.transition(
            task_id, [TaskStatus.RUNNING], TaskStatus.QUEUED, status_reason=reason
        ):
            enqueue_task(task_id, priority, runs, left, repo=repo)
            service.publish_status(task_id, TaskStatus.QUEUED, reason)
            counts["requeued"] += 1
        return
    if service.transition(
        task_id,
        [TaskStatus.RUNNING],
        TaskStatus.FAILED,
        status_reason="worker lost",
        finished_at=utcnow(),
    ):
        service.publish_status(task_id, TaskStatus.FAILED, "worker lost")
        counts["failed"] += 1
