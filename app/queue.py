"""Redis connection, the RQ queues and the Redis-side controls of the task engine.

- `enqueue_task`: one RQ job per task run, with RQ's `Retry` (exponential backoff, the task's own
  maximum of attempts) and RQ 3's `RateLimit` (per-repository or global concurrency).
- Concurrency limits: RQ gives a job ONE `RateLimit`, so a task in a repository carries its
  repository's and also takes a global slot at a second gate (`pass_global_gate`, when a worker
  dequeues it) from the same RQ registry the other tasks' jobs use; see `rate_limit_for`.
- Paused queues vs limits: a job RQ released into a paused queue would keep its slot until the
  queue is resumed; `settle_paused_queues` parks it (slot given back) and returns it on resume.
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
from redis.client import Pipeline
from rq import Callback, Queue, Retry
from rq.defaults import RQ_KEY_PREFIX
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
GLOBAL_GATE = "global_gate"  # job meta: the global limit this job takes a slot of when dequeued
PARKED_PREFIX = "taskdeck:parked:"  # + queue name: jobs of a paused queue that gave back a slot
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

    RQ gives a job one rate-limit key: a task in a repository carries its repository's limit
    (and also needs a global slot, see `global_gate_for`), any other task the global limit.
    0 means no limit.
    """
    settings = get_settings()
    if repo and settings.repo_concurrency > 0:
        digest = hashlib.sha1(repo.encode()).hexdigest()[:16]
        return RateLimit(f"taskdeck-repo-{digest}", settings.repo_concurrency)
    if settings.global_concurrency > 0:
        return RateLimit(GLOBAL_LIMIT_KEY, settings.global_concurrency)
    return None


def global_gate_for(repo: str | None) -> int:
    """The global limit a job must pass at the second gate, or 0: only a job that carries its
    repository's limit (RQ's one key) while a global limit is set."""
    settings = get_settings()
    if repo and settings.repo_concurrency > 0 and settings.global_concurrency > 0:
        return settings.global_concurrency
    return 0


def enqueue_task(
    task_id: int,
    priority: str,
    run: int,
    max_attempts: int,
    repo: str | None = None,
    pipeline: Pipeline | None = None,
) -> str:
    """Put a task run on its priority queue; RQ's Retry re-runs it on retryable failures.

    `run` numbers the enqueue (first run, manual retry, follow-up) so each has its own job id;
    `max_attempts` is what is left of the task's attempts for this run, the first included.
    `pipeline`: a transaction in MULTI holding the caller's commands to run first, executed
    here: one round trip and one MULTI with the job's own. RQ places a rate-limited job itself,
    so for one of those the caller's commands run first, on their own.
    """
    settings = get_settings()
    retries = max(0, max_attempts - 1)
    retry = Retry(max=retries, interval=backoff_intervals(retries)) if retries else None
    rate_limit = rate_limit_for(repo)
    if pipeline is not None and rate_limit is not None:
        pipeline.execute()
        pipeline = None
    job = get_queue(priority).enqueue(
        RUN_TASK,
        task_id,
        job_id=job_id_for(task_id, run),
        retry=retry,
        rate_limit=rate_limit,
        meta={GLOBAL_GATE: gate} if (gate := global_gate_for(repo)) else None,
        job_timeout=(settings.task_timeout_s + 120),
        result_ttl=86_400,
        failure_ttl=7 * 86_400,
        description=f"task {task_id}",
        on_failure=Callback("worker.jobs.on_job_failure", timeout=30),
        on_stopped=Callback("worker.jobs.on_job_stopped", timeout=30),
        pipeline=pipeline,
    )
    if pipeline is not None:
        pipeline.execute()
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
    if state == JobStatus.RATE_LIMITED:  # held by its own limit, the global gate, or parked
        waiting = [RateLimitRegistry(GLOBAL_LIMIT_KEY, connection=redis).rate_limited_key]
        if job.rate_limit_key:
            waiting.append(RateLimitRegistry(job.rate_limit_key, connection=redis).rate_limited_key)
        waiting.append(PARKED_PREFIX + job.origin)
        return any(redis.zscore(key, job_id) is not None for key in waiting)
    return False


# --- the second gate: a global slot for jobs that carry their repository's limit ---------------

# A dequeued job runs only holding a slot of both limits: its own (RQ's, its repository's) and the
# global one. It may hold one already (RQ promoted it from that limit's waiters); it takes what it
# lacks if there is room in both, atomically. Otherwise it holds NOTHING while it waits: it gives
# back what it held (so no two jobs can each hold the slot the other waits for, and RQ's
# maintenance never sees a waiting job in a slot) and joins the waiters of the first full limit,
# where RQ's own release (any job of that limit ending) promotes it back onto its queue.
# Both limits are registered first, as RQ does on every enqueue: RQ's maintenance deletes an
# idle limit's config, and a limit without one promotes no waiter.
# KEYS: own allowed, own rate_limited, global allowed, global rate_limited, rq:rl-keys,
#       global config, job hash, the queue's intermediate list, own config
# ARGV: own concurrency, global concurrency, job id, timestamp, own key, global key
# Returns {1 if it may run, the limit keys whose slot it gave back}.
_PASS_GATES = """
redis.call('SADD', KEYS[5], ARGV[5], ARGV[6])
redis.call('HSET', KEYS[9], 'concurrency', ARGV[1])
redis.call('HSET', KEYS[6], 'concurrency', ARGV[2])
local in_own = redis.call('ZSCORE', KEYS[1], ARGV[3])
local in_global = redis.call('ZSCORE', KEYS[3], ARGV[3])
local own_ok = in_own or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1])
local global_ok = in_global or redis.call('ZCARD', KEYS[3]) < tonumber(ARGV[2])
if own_ok and global_ok then
    if not in_own then redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3]) end
    if not in_global then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3]) end
    return {1, {}}
end
local freed = {}
if in_own then
    redis.call('ZREM', KEYS[1], ARGV[3])
    table.insert(freed, ARGV[5])
end
if in_global then
    redis.call('ZREM', KEYS[3], ARGV[3])
    table.insert(freed, ARGV[6])
end
if own_ok then
    redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
else
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
redis.call('HSET', KEYS[7], 'status', 'rate_limited')
redis.call('LREM', KEYS[8], 0, ARGV[3])
return {0, freed}
"""


def pass_global_gate(job: Job, queue: Queue, connection: Redis | None = None) -> bool:
    """Whether a job a worker just dequeued may run now, its repository's limit and the global
    one both counted (see _PASS_GATES).

    A job without the gate (see `global_gate_for`) always may: RQ's one limit did its work. One
    that may not is held back atomically (status rate_limited, among the waiters of the limit
    that is full, off the worker's list) and the slot it gave back goes to the next waiter.
    """
    concurrency = int((job.meta or {}).get(GLOBAL_GATE) or 0)
    if concurrency < 1 or not job.has_rate_limit:
        return True
    redis = connection or get_redis()
    own = RateLimitRegistry(job.rate_limit_key, connection=redis)
    shared = RateLimitRegistry(GLOBAL_LIMIT_KEY, connection=redis)
    keys = [
        own.allowed_key,
        own.rate_limited_key,
        shared.allowed_key,
        shared.rate_limited_key,
        RateLimitRegistry.rl_keys_key,
        shared.config_key,
        job.key,
        queue.intermediate_queue_key,
        own.config_key,
    ]
    args = [
        job.rate_limit_concurrency,
        concurrency,
        job.id,
        time.time(),
        job.rate_limit_key,
        GLOBAL_LIMIT_KEY,
    ]
    may_run, freed = redis.eval(_PASS_GATES, len(keys), *keys, *args)
    _fill(freed, redis)
    return bool(may_run)


def release_global_gate(
    job: Job, connection: Redis | None = None, cancelled: bool = False
) -> list[str]:
    """Give back a gated job's global slot once its run ended (any way), and let the next
    waiters through. RQ's stale-slot release: a job queued again (handed back) or started by
    another worker keeps the slot; RQ's maintenance frees one whose worker died. A `cancelled`
    job also leaves the global waiters (RQ's own cancel does that for the job's own limit)."""
    if not (job.meta or {}).get(GLOBAL_GATE):
        return []
    registry = RateLimitRegistry(GLOBAL_LIMIT_KEY, connection=connection or get_redis())
    if cancelled:
        return registry.cancel(job.id)
    return registry.release_stale_and_enqueue(job.id)


# --- paused queues vs limits ---------------------------------------------------------------------

# Park the jobs of a paused queue that hold a slot (their own limit's or the global gate's): off
# the queue, slot given back, status rate_limited, in the queue's parked set. Returns {how many
# jobs it parked, the limit keys whose slots were freed}. A no-op unless the queue is paused.
# KEYS: paused set, queue list, parked set, global allowed
# ARGV: queue name, timestamp, rl key prefix, job key prefix, global limit key
_PARK = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
    return {0, {}}
end
local parked, freed = 0, {}
for _, job_id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local job_key = ARGV[4] .. job_id
    local own = redis.call('HGET', job_key, 'rate_limit_key')
    local held = false
    if own and redis.call('ZREM', ARGV[3] .. own .. ':allowed', job_id) == 1 then
        held = true
        table.insert(freed, own)
    end
    if redis.call('ZREM', KEYS[4], job_id) == 1 then
        held = true
        table.insert(freed, ARGV[5])
    end
    if held then
        redis.call('LREM', KEYS[2], 1, job_id)
        redis.call('ZADD', KEYS[3], ARGV[2], job_id)
        redis.call('HSET', job_key, 'status', 'rate_limited')
        parked = parked + 1
    end
end
return {parked, freed}
"""

# Return a resumed queue's parked jobs to their own limit's waiters (oldest first, as parked).
# A job cancelled or deleted meanwhile is dropped. Returns the limit keys to fill.
# KEYS: paused set, parked set, rq:rl-keys
# ARGV: queue name, rl key prefix, job key prefix
_UNPARK = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
    return {}
end
local keys = {}
local parked = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #parked, 2 do
    local job_id, score = parked[i], parked[i + 1]
    redis.call('ZREM', KEYS[2], job_id)
    local f = redis.call(
        'HMGET', ARGV[3] .. job_id, 'status', 'rate_limit_key', 'rate_limit_concurrency')
    if f[1] == 'rate_limited' and f[2] and f[3] then
        redis.call('SADD', KEYS[3], f[2])
        redis.call('HSET', ARGV[2] .. f[2], 'concurrency', f[3])
        redis.call('ZADD', ARGV[2] .. f[2] .. ':rate_limited', score, job_id)
        table.insert(keys, f[2])
    end
end
return keys
"""
RL_PREFIX = RQ_KEY_PREFIX + ":rl:"  # RateLimitRegistry's keys: rq:rl:<key>[:allowed|:rate_limited]


def _fill(keys: list, redis: Redis) -> None:
    """Let waiters of these limits through up to their concurrency (RQ's atomic promotion)."""
    for key in dict.fromkeys(k.decode() if isinstance(k, bytes) else k for k in keys):
        registry = RateLimitRegistry(key, connection=redis)
        if registry.concurrency:
            registry.acquire_and_enqueue(registry.concurrency)


def settle_paused_queues(connection: Redis | None = None) -> int:
    """Make the limits ignore paused queues: park the jobs RQ released into a paused queue
    (their slots go to jobs of open queues), return a resumed queue's parked jobs to their
    waiters. Idempotent; run on pause / resume and every second by the worker pool (RQ may
    release a waiter into a paused queue at any time). Returns how many jobs it parked."""
    redis = connection or get_redis()
    parked = 0
    global_allowed = RateLimitRegistry(GLOBAL_LIMIT_KEY, connection=redis).allowed_key
    job_prefix = Job.redis_job_namespace_prefix
    for queue in all_queues(redis):
        park_key = PARKED_PREFIX + queue.name
        for _ in range(1000):  # freed slots may release more jobs into this paused queue
            count, freed = redis.eval(
                _PARK,
                4,
                PAUSED_KEY,
                queue.key,
                park_key,
                global_allowed,
                queue.name,
                time.time(),
                RL_PREFIX,
                job_prefix,
                GLOBAL_LIMIT_KEY,
            )
            if not count:
                break
            parked += count
            _fill(freed, redis)
        keys = redis.eval(
            _UNPARK,
            3,
            PAUSED_KEY,
            park_key,
            RateLimitRegistry.rl_keys_key,
            queue.name,
            RL_PREFIX,
            job_prefix,
        )
        _fill(keys, redis)
    return parked


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
