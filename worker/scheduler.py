"""Schedules: submit the task of each due schedule, exactly once across every worker host.

Why our own loop over rows rather than rq-scheduler or `rq cron`: schedules are database rows
that people edit and pause from the UI and the API, and they must survive a Redis restart.
rq-scheduler keeps its schedule in Redis only (a restart without persistence forgets it; an edit
is a cancel plus a new job) and is unmaintained; RQ's CronScheduler reads a static Python config
at start. RQ's own scheduler still serves the delayed retries (worker/__main__.py).

Exactly once: a due schedule is claimed with a conditional UPDATE (`WHERE runs_count = seen AND
enabled`) in the same transaction that inserts its task, so of several hosts one wins and the
others update nothing; a crash before the commit fires nothing and the next tick fires it. The
task is then enqueued; if Redis refuses, the row is queued and the reconciler enqueues it.
A schedule that missed several runs (the pool was down) fires once, then follows its cron.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlmodel import col, select

from app import service
from app.db import session_scope
from app.models import Schedule, TaskStatus, utcnow
from app.schemas import TaskCreate

log = logging.getLogger(__name__)


def fire_due_schedules() -> list[int]:
    """Submit the task of every enabled schedule whose next run is due; returns the task ids."""
    now = utcnow()
    with session_scope() as session:
        due = session.exec(
            select(Schedule.id, Schedule.runs_count)
            .where(col(Schedule.enabled), col(Schedule.next_run_at) <= now)
            .order_by(col(Schedule.next_run_at))
        ).all()
    fired = []
    for schedule_id, runs_count in due:
        task_id = fire(schedule_id, runs_count)
        if task_id is not None:
            fired.append(task_id)
    return fired


def fire(schedule_id: int, runs_count: int) -> int | None:
    """Claim one run of a schedule and insert its task in one transaction; enqueue it after.

    Returns the new task's id, or None if another host claimed this run first.
    """
    now = utcnow()
    with session_scope() as session:
        row = session.get(Schedule, schedule_id)
        if row is None or not row.enabled or row.runs_count != runs_count:
            return None
        # A cron moves to its next time; a one-off is done (an edit can give it a new time).
        next_run = service.next_run_after(row.cron, None, now, timezone=row.timezone)
        try:
            data = TaskCreate.model_validate(row.template)
        except ValueError as exc:  # e.g. its directory is gone: skip this run, keep the schedule
            log.warning("schedule %s: its task is no longer valid: %s", schedule_id, exc)
            data = None
        claimed = session.exec(
            update(Schedule)
            .where(
                col(Schedule.id) == schedule_id,
                col(Schedule.runs_count) == runs_count,
                col(Schedule.enabled),
            )
            .values(
                runs_count=runs_count + 1,
                last_run_at=now,
                next_run_at=next_run,
                enabled=next_run is not None,
            )
        ).rowcount
        if claimed != 1 or data is None:
            return None
        task = service.new_task_row(data)
        session.add(task)
        session.flush()
        service.add_dependencies(session, task.id, data.depends_on)
        session.exec(
            update(Schedule).where(col(Schedule.id) == schedule_id).values(last_task_id=task.id)
        )
        task_id = task.id
    log.info("schedule %s fired: task %s", schedule_id, task_id)
    try:
        state = service.dispatch(task_id)
    except Exception:  # Redis away: the task row is queued, the reconciler enqueues it
        log.warning("schedule %s: task %s not enqueued yet", schedule_id, task_id, exc_info=True)
        state = "waiting"
    if state != TaskStatus.FAILED:
        service.publish_status(task_id, TaskStatus.QUEUED, f"from schedule #{schedule_id}")
    return task_id
