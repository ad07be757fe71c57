"""Redis connection, the RQ queues and the Redis-side controls of the task engine.

- `enqueue_task`: one RQ job per task run, with RQ's `Retry` (exponential backoff, the task's own
  maximum of attempts) and RQ 3's `RateLimit` (per-repository or global concurrency).
- `TaskLock`: a per-task lease in Redis that `run_task` holds while an attempt runs, so a task is
  never run twice at the same time (abandoned-job retries, the reconciler and a late duplicate job
  all have to take it first).
- Paused queues: a Redis set the workers read before they take a job (the database keeps the
  truth, see `app.models.QueuePause`; the reconciler copies it back after a Redis restart).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

from redis import Redis
from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimit, RateLimitRegistry
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from app.settings import get_settings

PRIORITIES = ("high", "default", "low")
QUEUE_PREFIX = "taskdeck-"
RUN_TASK = "worker.jobs.run_task"
PAUSED_KEY = "taskdeck:paused-queues"
GLOBAL_LIMIT_KEY = "taskdeck-global"
log = logging.getLogger(__name__)


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
    """The RQ job id of a task's run (one job per run, its retries included)."""
    return f"task-{task_id}-{attempt}"


def task_id_of_job(job_id: str) -> int | None:
    """The task id in a job id made by `job_id_for`, or None for other jobs."""
    parts = job_id.split("-")
    if len(parts) == 3 and parts[0] == "task" and parts[1].isdigit():
        return int(parts[1])
    return None


def backoff_intervals(retries: int) -> list[int]:
    """Seconds to wait before each retry: base, 2*base, 4*base ... capped at the maximum."""
    settings = get_settings()
    base, cap = settings.retry_backoff_s, settings.retry_backoff_max_s
    return [min(cap, base * 2**n) for n in range(retries)]


def rate_limit_for(repo: str | None) -> RateLimit | None:
    """The concurrency limit a task's job carries (RQ holds the job back while it is reached).

    RQ gives a job one rate-limit key: a task in a repository counts against its repository's
    limit, any other task against the global limit. 0 means no limit.
    """
    settings = get_settings()
    if repo and settings.repo_concurrency > 0:
        digest = hashlib.sha1(repo.encode()).hexdigest()[:16]
        return RateLimit(f"taskdeck-repo-{digest}", settings.repo_concurrency)
    if settings.global_concurrency > 0:
        return RateLimit(GLOBAL_LIMIT_KEY, settings.global_concurrency)
    return None


def enqueue_task(
    task_id: int, priority: str, run: int, max_attempts: int, repo: str | None = None
) -> str:
    """Put a task run on its priority queue; RQ's Retry re-runs it on retryable failures.

    `run` numbers the enqueue (first run, manual retry, follow-up) so each has its own job id;
    `max_attempts` is what is left of the task's attempts for this run, the first included.
    """
    settings = get_settings()
    retries = max(0, max_attempts - 1)
    retry = Retry(max=retries, interval=backoff_intervals(retries)) if retries else None
    job = get_queue(priority).enqueue(
        RUN_TASK,
        task_id,
        job_id=job_id_for(task_id, run),
        retry=retry,
        rate_limit=rate_limit_for(repo),
        job_timeout=(settings.task_timeout_s + 120),
        result_ttl=86_400,
        failure_ttl=7 * 86_400,
        description=f"task {task_id}",
        on_failure=Callback("worker.jobs.on_job_failure", timeout=30),
        on_stopped=Callback("worker.jobs.on_job_stopped", timeout=30),
    )
    return job.id


# --- where a job is ------------------------------------------------------------------------------

LIVE_JOB_STATES = ("queued", "started", "scheduled", "deferred", "rate_limited")


def job_state(job_id: str, connection: Redis | None = None) -> str | None:
    """The RQ status of a job, or None if Redis does not know the job."""
    value = (connection or get_redis()).hget(Job.key_for(job_id), "status")
    return value.decode() if isinstance(value, bytes) else value


def job_is_live(job_id: str, connection: Redis | None = None) -> bool:
    """Whether the job is still to run or running, by its status."""
    return job_state(job_id, connection) in LIVE_JOB_STATES


def job_is_placed(job_id: str, connection: Redis | None = None) -> bool:
    """Whether the job is live AND where RQ will find it: on its queue, in the started, scheduled
    or deferred registry, or held by its rate limit. A job whose status says queued but that sits
    on no list (a worker died between popping and starting it, a partial restore) is not placed.
    """
    redis = connection or get_redis()
    job = Job(job_id, connection=redis)
    try:
        job.refresh()
    except NoSuchJobError:
        return False
    state = job.get_status(refresh=False)
    queue = Queue(job.origin, connection=redis)
    if state == JobStatus.QUEUED:
        return (
            redis.lpos(queue.key, job_id) is not None
            or redis.lpos(queue.intermediate_queue_key, job_id) is not None
        )
    if state == JobStatus.STARTED:
        return job_id in StartedJobRegistry(queue.name, connection=redis)
    if state == JobStatus.SCHEDULED:
        return job_id in ScheduledJobRegistry(queue.name, connection=redis)
    if state == JobStatus.DEFERRED:
        return job_id in DeferredJobRegistry(queue.name, connection=redis)
    if state == JobStatus.RATE_LIMITED and job.rate_limit_key:
        registry = RateLimitRegistry(job.rate_limit_key, connection=redis)
        return redis.zscore(registry.rate_limited_key, job_id) is not None
    return False


# --- paused queues -------------------------------------------------------------------------------


def paused_queue_names(connection: Redis | None = None) -> set[str]:
    """Names of the queues whose jobs workers do not start."""
    members = (connection or get_redis()).smembers(PAUSED_KEY)
    return {m.decode() if isinstance(m, bytes) else m for m in members}


def set_queue_paused(name: str, paused: bool, connection: Redis | None = None) -> None:
    """Pause or resume a queue in Redis (app.service keeps the database row in step)."""
    redis = connection or get_redis()
    if paused:
        redis.sadd(PAUSED_KEY, name)
    else:
        redis.srem(PAUSED_KEY, name)


# --- one run of a task at a time -----------------------------------------------------------------

# Refresh the lease if it is ours, take it again if Redis forgot it (restart), else report the
# holder. Returns 1 when the lease is ours afterwards.
_REFRESH = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class TaskLock:
    """A lease on a task in Redis: whoever holds it is the only one running the task.

    `run_task` takes it before it opens an attempt and refreshes it while the attempt runs; a
    holder that dies (SIGKILL) stops refreshing, so the lease lapses after `ttl_s`.
    """

    def __init__(self, task_id: int, ttl_s: int | None = None, connection: Redis | None = None):
        self.task_id = task_id
        self.ttl_s = ttl_s or get_settings().task_lock_ttl_s
        self.redis = connection or get_redis()
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @staticmethod
    def key_for(task_id: int) -> str:
        return f"taskdeck:task:{task_id}:lock"

    @property
    def key(self) -> str:
        return self.key_for(self.task_id)

    def acquire(self, wait_s: float = 0.0) -> bool:
        """Take the lease, waiting up to `wait_s` for another holder's lease to end."""
        deadline = time.monotonic() + wait_s
        while True:
            if self.redis.set(self.key, self.token, nx=True, ex=self.ttl_s):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def refresh(self) -> bool:
        """Extend the lease (or take it back after Redis lost it); False if another holds it."""
        return bool(self.redis.eval(_REFRESH, 1, self.key, self.token, self.ttl_s))

    @contextmanager
    def kept_alive(self, on_lost: Callable[[], object] | None = None) -> Iterator[None]:
        """Refresh the lease from a background thread while the block runs; if another run
        took it meanwhile, call `on_lost` once (e.g. kill this run's claude process)."""
        stop = threading.Event()

        def keep() -> None:
            while not stop.wait(max(1.0, self.ttl_s / 4)):
                try:
                    if not self.refresh():
                        log.error("task %s: its lease was taken by another run", self.task_id)
                        if on_lost is not None:
                            on_lost()
                        return
                except Exception:  # Redis away for a moment: try again at the next beat
                    log.warning("task %s: could not refresh its lease", self.task_id)

        thread = threading.Thread(target=keep, name=f"lease-{self.task_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def release(self) -> None:
        """Give the lease up if it is still ours."""
        self.redis.eval(_RELEASE, 1, self.key, self.token)

    @classmethod
    def break_for(cls, task_id: int, connection: Redis | None = None) -> None:
        """Drop a task's lease whoever holds it: only once its holder is known dead (a stopped
        job's work horse was killed), so the next run need not wait for the lease to lapse."""
        (connection or get_redis()).delete(cls.key_for(task_id))

    @classmethod
    def is_held(cls, task_id: int, connection: Redis | None = None) -> bool:
        """Whether some run holds the task's lease right now."""
        return bool((connection or get_redis()).exists(cls.key_for(task_id)))
