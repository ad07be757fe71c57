"""The reconciler: the database is the source of truth, Redis may forget (restart, flush).

It re-enqueues queued tasks whose RQ job is gone, and ends or re-queues running tasks whose job
no longer runs anywhere. Workers run it at start and periodically.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlmodel import col, select

from app import service
from app.db import session_scope
from app.models import Task, TaskStatus, utcnow
from app.queue import enqueue_task, get_redis, job_id_for

log = logging.getLogger(__name__)
GRACE = timedelta(seconds=10)  # a task this young may still be on its way into Redis
LIVE_JOB_STATES = {
    JobStatus.QUEUED,
    JobStatus.STARTED,
    JobStatus.SCHEDULED,
    JobStatus.DEFERRED,
}


def _job_status(job_id: str) -> str | None:
    try:
        return Job.fetch(job_id, connection=get_redis()).get_status(refresh=False)
    except NoSuchJobError:
        return None


def reconcile_once() -> dict[str, int]:
    """One pass; returns how many tasks were re-enqueued and failed."""
    counts = {"requeued": 0, "failed": 0}
    # One reconciler at a time across all worker hosts.
    if not get_redis().set("taskdeck:reconciler:lock", "1", nx=True, ex=10):
        return counts
    cutoff = utcnow() - GRACE
    with session_scope() as session:
        rows = session.exec(
            select(Task.id, Task.status, Task.runs, Task.priority, Task.max_attempts,
                   Task.attempts_count, Task.created_at)
            .where(col(Task.status).in_(TaskStatus.ACTIVE))
        ).all()
    for task_id, status, runs, priority, max_attempts, attempts, created_at in rows:
        if created_at and created_at.replace(tzinfo=cutoff.tzinfo) > cutoff:
            continue
        job_id = job_id_for(task_id, runs)
        state = _job_status(job_id)
        if state in LIVE_JOB_STATES:
            continue
        if status == TaskStatus.QUEUED or attempts < max_attempts:
            reason = "re-enqueued: its job was missing from Redis"
            if status == TaskStatus.RUNNING:
                service.close_open_attempts(task_id, TaskStatus.FAILED, "worker lost")
                if not service.transition(task_id, [TaskStatus.RUNNING], TaskStatus.QUEUED,
                                          status_reason=reason):
                    continue
            left = max(1, max_attempts - attempts)
            enqueue_task(task_id, priority, runs, left)
            service.publish_status(task_id, TaskStatus.QUEUED, reason)
            counts["requeued"] += 1
        else:
            service.close_open_attempts(task_id, TaskStatus.FAILED, "worker lost")
            if service.transition(task_id, [TaskStatus.RUNNING], TaskStatus.FAILED,
                                  status_reason="worker lost", finished_at=utcnow()):
                service.publish_status(task_id, TaskStatus.FAILED, "worker lost")
                counts["failed"] += 1
    if any(counts.values()):
        log.info("reconciler: %s", counts)
    return counts
