"""Redis connection, the RQ priority queues and the helpers that enqueue task jobs."""

from __future__ import annotations

from functools import lru_cache

from redis import Redis
from rq import Callback, Queue, Retry

from app.settings import get_settings

PRIORITIES = ("high", "default", "low")
QUEUE_PREFIX = "taskdeck-"
RUN_TASK = "worker.jobs.run_task"


@lru_cache(maxsize=8)
def redis_for(url: str) -> Redis:
    """One client (with its connection pool) per Redis URL."""
    return Redis.from_url(url, health_check_interval=30, socket_keepalive=True)


def get_redis() -> Redis:
    """The Redis of the configured settings."""
    return redis_for(get_settings().redis_url)


def queue_name(priority: str) -> str:
    """The RQ queue name of a priority."""
    return QUEUE_PREFIX + priority


def get_queue(priority: str = "default", connection: Redis | None = None) -> Queue:
    """The RQ queue of a priority (high, default, low)."""
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")
    return Queue(queue_name(priority), connection=connection or get_redis())


def all_queues(connection: Redis | None = None) -> list[Queue]:
    """The queues in the order workers serve them: high first."""
    return [get_queue(p, connection) for p in PRIORITIES]


def job_id_for(task_id: int, attempt: int) -> str:
    """The RQ job id of a task's attempt run (one job per run, retries included)."""
    return f"task-{task_id}-{attempt}"


def enqueue_task(task_id: int, priority: str, run: int, max_attempts: int) -> str:
    """Put a task run on its priority queue; RQ's Retry re-runs it on retryable failures.

    `run` numbers the enqueue (first run, manual retry, follow-up) so each has its own job id.
    """
    settings = get_settings()
    retries = max(0, max_attempts - 1)
    retry = Retry(max=retries, interval=settings.retry_backoff_s) if retries else None
    job = get_queue(priority).enqueue(
        RUN_TASK,
        task_id,
        job_id=job_id_for(task_id, run),
        retry=retry,
        job_timeout=(settings.task_timeout_s + 120),
        result_ttl=86_400,
        failure_ttl=7 * 86_400,
        description=f"task {task_id}",
        on_failure=Callback("worker.jobs.on_job_failure", timeout=30),
        on_stopped=Callback("worker.jobs.on_job_stopped", timeout=30),
    )
    return job.id
