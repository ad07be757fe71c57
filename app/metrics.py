"""Metric samples (queue depth, running tasks, workers) and the aggregates the dashboard charts.

`tick()` takes one sample every `metrics_interval_s` into the MetricSample table, prunes samples
older than `metrics_retention_days`, and lets app/alerts.py check its thresholds. It is called
from the worker pool's parent process (worker/__main__.py) AND from a lifespan task of each web
app process (app/app.py): a Redis lock (SET NX PX) makes exactly one of them sample per interval,
however many app and worker processes run, and the dashboard keeps its history (and its "no
worker alive" alert) even while the worker pool is down.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func
from sqlmodel import col, select

from app import service
from app.db import aware, get_engine, session_scope
from app.models import MetricSample, Task, TaskStatus, utcnow
from app.queue import get_redis
from app.settings import get_settings

log = logging.getLogger(__name__)
LOCK_KEY = "taskdeck:metrics:lock"
DURATION_BUCKETS = [  # (label, upper bound in ms)
    ("<10 s", 10_000),
    ("10-30 s", 30_000),
    ("30-60 s", 60_000),
    ("1-2 min", 120_000),
    ("2-5 min", 300_000),
    ("5-10 min", 600_000),
    ("10-30 min", 1_800_000),
    (">30 min", None),
]


def take_sample() -> MetricSample:
    """The queue depth, running jobs and workers right now (not stored)."""
    queues = service.queue_stats()
    workers = service.worker_stats()
    return MetricSample(
        ts=utcnow(),
        queued=sum(q["queued"] for q in queues),
        running=sum(q["running"] for q in queues),
        scheduled=sum(q["scheduled"] for q in queues),
        workers=len(workers),
        busy_workers=sum(1 for w in workers if w["state"] == "busy"),
    )


def record_sample() -> MetricSample | None:
    """Store a sample unless another process took one this interval; prune old samples."""
    settings = get_settings()
    interval_ms = max(1000, settings.metrics_interval_s * 1000)
    if not get_redis().set(LOCK_KEY, os.getpid(), nx=True, px=interval_ms - 200):
        return None
    sample = take_sample()
    cutoff = utcnow() - timedelta(days=settings.metrics_retention_days)
    with session_scope() as session:
        session.add(sample)
        session.exec(delete(MetricSample).where(col(MetricSample.ts) < cutoff))
    return sample


def tick() -> MetricSample | None:
    """One round of the sampler: a sample and an alert check (when this process holds the turn)."""
    from app import alerts

    sample = record_sample()
    if sample is not None:
        alerts.check_and_notify()
    return sample


async def run_forever() -> None:
    """The web app's lifespan task: tick every second or so (the lock spaces the samples)."""
    while True:
        try:
            await asyncio.to_thread(tick)
        except Exception:  # Redis or the database away for a moment: try again next round
            log.warning("metrics sampler failed", exc_info=True)
        await asyncio.sleep(1.0)


# --- Aggregates for the dashboard charts (GROUP BY in SQL: cheap with 100,000 tasks) ---------


def _hour_of(column: Any) -> Any:
    if get_engine().dialect.name == "postgresql":
        return func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24:00")
    return func.strftime("%Y-%m-%d %H:00", column)


def _day_of(column: Any) -> Any:
    if get_engine().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def finished_per_hour(hours: int = 24) -> dict[str, Any]:
    """Tasks finished in each of the last `hours` hours per outcome: {hours, succeeded, ...}."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    starts = [now - timedelta(hours=h) for h in range(hours - 1, -1, -1)]
    labels = [start.strftime("%Y-%m-%d %H:00") for start in starts]
    since = now - timedelta(hours=hours - 1)
    bucket = _hour_of(Task.finished_at)
    with session_scope() as session:
        rows = session.exec(
            select(bucket, Task.status, func.count())
            .where(col(Task.finished_at) >= since, col(Task.status).in_(TaskStatus.TERMINAL))
            .group_by(bucket, Task.status)
        ).all()
    series = {status: [0] * hours for status in TaskStatus.TERMINAL}
    index = {label: i for i, label in enumerate(labels)}
    for label, status, count in rows:
        if label in index and status in series:
            series[status][index[label]] += count
    return {"hours": [label[11:] for label in labels], **series}


def duration_distribution(days: int = 7) -> dict[str, list]:
    """How many tasks finished in the last `days` days took how long: {labels, counts}."""
    since = utcnow() - timedelta(days=days)
    whens = [
        (col(Task.duration_ms) < bound, i)
        for i, (_, bound) in enumerate(DURATION_BUCKETS)
        if bound is not None
    ]
    bucket = case(*whens, else_=len(DURATION_BUCKETS) - 1)
    with session_scope() as session:
        rows = session.exec(
            select(bucket, func.count())
            .where(col(Task.finished_at) >= since, col(Task.duration_ms) > 0)
            .group_by(bucket)
        ).all()
    counts = [0] * len(DURATION_BUCKETS)
    for index, count in rows:
        counts[int(index)] = count
    return {"labels": [label for label, _ in DURATION_BUCKETS], "counts": counts}


def cost_tokens_per_day(days: int = 14) -> dict[str, list]:
    """Cost (USD) and tokens of the tasks finished on each of the last `days` days."""
    today = datetime.now(UTC).date()
    labels = [(today - timedelta(days=d)).isoformat() for d in range(days - 1, -1, -1)]
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), UTC)
    bucket = _day_of(Task.finished_at)
    with session_scope() as session:
        rows = session.exec(
            select(
                bucket,
                func.sum(Task.cost_usd),
                func.sum(Task.input_tokens + Task.output_tokens),
            )
            .where(col(Task.finished_at) >= since)
            .group_by(bucket)
        ).all()
    cost = dict.fromkeys(labels, 0.0)
    tokens = dict.fromkeys(labels, 0)
    for label, day_cost, day_tokens in rows:
        if label in cost:
            cost[label] = round(float(day_cost or 0), 4)
            tokens[label] = int(day_tokens or 0)
    return {"days": labels, "cost": list(cost.values()), "tokens": list(tokens.values())}


def queue_depth_series(hours: int = 6, points: int = 360) -> dict[str, list]:
    """Samples of the last `hours` hours (at most `points`, evenly thinned): {ts, queued, ...}."""
    since = utcnow() - timedelta(hours=hours)
    with session_scope() as session:
        rows = list(
            session.exec(
                select(MetricSample)
                .where(col(MetricSample.ts) >= since)
                .order_by(col(MetricSample.ts))
            )
        )
    step = max(1, len(rows) // points)
    rows = rows[::step]
    return {
        "ts": [aware(r.ts).isoformat() for r in rows],
        "queued": [r.queued for r in rows],
        "running": [r.running for r in rows],
        "workers": [r.workers for r in rows],
    }


def running_tasks(limit: int = 12) -> list[dict[str, Any]]:
    """The running tasks, oldest first, with their latest turn: [{task, turn, max_turns}]."""
    from app.models import TaskEvent
    from app.schemas import TaskOut

    with session_scope() as session:
        tasks = list(
            session.exec(
                select(Task)
                .where(col(Task.status) == TaskStatus.RUNNING)
                .order_by(col(Task.id))
                .limit(limit)
            )
        )
        ids = [t.id for t in tasks]
        latest = {}
        if ids:
            newest = (
                select(func.max(TaskEvent.id))
                .where(col(TaskEvent.task_id).in_(ids), TaskEvent.type == "progress")
                .group_by(TaskEvent.task_id)
            )
            for event in session.exec(select(TaskEvent).where(col(TaskEvent.id).in_(newest))):
                latest[event.task_id] = event.data
        return [
            {
                "task": TaskOut.model_validate(task),
                "turn": int(latest.get(task.id, {}).get("turn") or 0),
                "max_turns": int(latest.get(task.id, {}).get("max_turns") or task.max_turns),
            }
            for task in tasks
        ]


def running_usage(task_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The usage so far of tasks' current runs: {task id: data of its newest usage event}, for
    the tasks whose newest usage event came after their newest status change (a usage event of
    an earlier attempt, or of a finished run, is left out; the task row has the truth then)."""
    from app.models import TaskEvent

    if not task_ids:
        return {}
    with session_scope() as session:
        newest = {}
        for kind in ("usage", "status"):
            query = (
                select(TaskEvent.task_id, func.max(TaskEvent.id))
                .where(col(TaskEvent.task_id).in_(task_ids), TaskEvent.type == kind)
                .group_by(TaskEvent.task_id)
            )
            newest[kind] = dict(session.exec(query).all())
        wanted = [
            event_id
            for task_id, event_id in newest["usage"].items()
            if event_id > newest["status"].get(task_id, 0)
        ]
        if not wanted:
            return {}
        events = session.exec(select(TaskEvent).where(col(TaskEvent.id).in_(wanted)))
        return {event.task_id: dict(event.data) for event in events}
