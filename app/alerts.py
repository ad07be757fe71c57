"""Alerts: failure rate, queue wait and dead workers checked against thresholds in the settings.

`evaluate()` says which alerts fire now. `check_and_notify()` (run by the metrics sampler, one
process at a time) compares them with the ones that fired before (kept in Redis), POSTs each
change to `alert_webhook_url` as JSON ({"alert", "state": "firing"|"resolved", "message", ...})
and stores the new set, which the UI shows as a banner on every page (`active()`).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import col, select

from app import service
from app.db import session_scope
from app.models import Task, TaskStatus, utcnow
from app.queue import get_redis
from app.settings import get_settings

log = logging.getLogger(__name__)
ACTIVE_KEY = "taskdeck:alerts:active"


def failure_rate() -> tuple[float, int]:
    """Share of the tasks finished within the window that failed, and how many finished."""
    settings = get_settings()
    since = utcnow() - timedelta(seconds=settings.alert_failure_window_s)
    with session_scope() as session:
        rows = session.exec(
            select(Task.status, func.count())
            .where(
                col(Task.finished_at) >= since,
                col(Task.status).in_([TaskStatus.SUCCEEDED, TaskStatus.FAILED]),
            )
            .group_by(Task.status)
        ).all()
    counts = dict(rows)
    total = counts.get(TaskStatus.SUCCEEDED, 0) + counts.get(TaskStatus.FAILED, 0)
    return (counts.get(TaskStatus.FAILED, 0) / total if total else 0.0), total


def evaluate() -> list[dict[str, Any]]:
    """The alerts that fire now: [{alert, level, message}], empty when all is well."""
    settings = get_settings()
    out: list[dict[str, Any]] = []
    rate, finished = failure_rate()
    if finished >= settings.alert_failure_min_tasks and rate >= settings.alert_failure_rate:
        out.append(
            {
                "alert": "failure_rate",
                "level": "red",
                "message": f"{rate:.0%} of the {finished} tasks finished in the last "
                f"{settings.alert_failure_window_s // 60} min failed "
                f"(threshold {settings.alert_failure_rate:.0%})",
            }
        )
    queues = service.queue_stats()
    waits = [(q["oldest_wait_s"], q["name"]) for q in queues if q["queued"]]
    if waits and max(waits)[0] >= settings.alert_queue_wait_s:
        wait, name = max(waits)
        out.append(
            {
                "alert": "queue_wait",
                "level": "amber",
                "message": f"the oldest job in {name} has waited {wait:.0f} s "
                f"(threshold {settings.alert_queue_wait_s} s)",
            }
        )
    workers = service.worker_stats()
    silent = [
        w["name"]
        for w in workers
        if w["heartbeat_age_s"] is not None and w["heartbeat_age_s"] >= settings.alert_heartbeat_s
    ]
    if len(workers) < settings.alert_min_workers:
        out.append(
            {
                "alert": "dead_worker",
                "level": "red",
                "message": f"{len(workers)} worker(s) alive, at least "
                f"{settings.alert_min_workers} expected",
            }
        )
    elif silent:
        out.append(
            {
                "alert": "dead_worker",
                "level": "red",
                "message": f"no heartbeat for {settings.alert_heartbeat_s} s from "
                + ", ".join(silent),
            }
        )
    return out


def active() -> list[dict[str, Any]]:
    """The alerts that fired at the last check (what the banner shows)."""
    raw = get_redis().hgetall(ACTIVE_KEY)
    return sorted((json.loads(value) for value in raw.values()), key=lambda a: a["alert"])


def check_and_notify() -> list[dict[str, Any]]:
    """Evaluate, POST every alert that started or stopped firing, store the set; return it."""
    redis = get_redis()
    now = evaluate()
    before = {key.decode(): json.loads(value) for key, value in redis.hgetall(ACTIVE_KEY).items()}
    current = {alert["alert"]: alert for alert in now}
    changes = [{**a, "state": "firing"} for k, a in current.items() if k not in before]
    changes += [{**a, "state": "resolved"} for k, a in before.items() if k not in current]
    pipe = redis.pipeline()
    pipe.delete(ACTIVE_KEY)
    if current:
        pipe.hset(ACTIVE_KEY, mapping={k: json.dumps(a) for k, a in current.items()})
    pipe.execute()
    for change in changes:
        post_webhook(change)
    return now


def post_webhook(alert: dict[str, Any]) -> bool:
    """POST one alert change to the configured webhook; False (logged) if it did not take it."""
    url = get_settings().alert_webhook_url
    if not url:
        return False
    body = {**alert, "source": "taskdeck", "ts": time.time()}
    try:
        response = httpx.post(url, json=body, timeout=5)
        response.raise_for_status()
        return True
    except httpx.HTTPError as exc:
        log.warning("alert webhook failed: %s", type(exc).__name__)
        return False
