"""The RQ job: run one attempt of a task, stream its events, persist its outcome.

Retry policy: the job raises `RetryableFailure` for failures worth another attempt (API overload,
rate limit, server errors, network, idle hang) and RQ's `Retry` re-queues it with backoff; other
failures end the task at once. A worker lost mid-run is handled by RQ's abandoned-job cleanup,
which calls `on_job_failure` (AbandonedJobError) and then retries the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

from redis.exceptions import RedisError
from rq import get_current_job
from rq.exceptions import AbandonedJobError

from app import live, service
from app.db import session_scope
from app.events import ErrorEvent, Event, TextDeltaEvent
from app.models import Attempt, Task, TaskStatus, utcnow
from app.queue import TaskLock
from app.settings import get_settings
from worker import sandbox, workspace
from worker.claude_code import RunOutcome, RunSpec, run_claude

log = logging.getLogger(__name__)

RETRYABLE_API_STATUSES = {408, 409, 429, 500, 502, 503, 504, 529}
RETRYABLE_ERROR_KINDS = {"idle_timeout"}
TRANSIENT_TEXT = re.compile(
    r"connection|network|econn|socket|timed? ?out|overloaded|fetch failed", re.IGNORECASE
)
FLUSH_EVERY_S = 0.5
FLUSH_EVERY_N = 100


class RetryableFailure(Exception):
    """The attempt failed for a reason another attempt may not meet (RQ's Retry re-runs it)."""


class EventRecorder:
    """Publishes each event to Redis at once and stores them in the database in batches.

    Text deltas (partial typing) go to Redis only: the complete text event that follows them is
    what the database keeps."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        self._pending: list[tuple[str, Event]] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        if isinstance(event, TextDeltaEvent):
            # typing deltas are for the live page only; the full text event is stored
            with contextlib.suppress(RedisError):
                live.publish(self.task_id, event)
        else:
            stream_id = service.publish_event(self.task_id, event)  # rides out a Redis restart
            with self._lock:
                self._pending.append((stream_id, event))
        # Checked on every event, deltas included: a long stream of typing must not hold the
        # events before it (init, tool calls) out of the database.
        with self._lock:
            due = bool(self._pending) and (
                len(self._pending) >= FLUSH_EVERY_N
                or time.monotonic() - self._last_flush >= FLUSH_EVERY_S
            )
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._last_flush = time.monotonic()
        service.record_events(self.task_id, batch)


def worker_name() -> str:
    """host:pid of this process (workers name themselves so the UI can show where tasks run)."""
    job = get_current_job()
    name = getattr(job, "worker_name", None) if job else None
    return name or f"{socket.gethostname()}:{os.getppid()}"


def pid_file_for(task_id: int) -> Path:
    """Where the launch shim records the claude pid of a task's current run."""
    return sandbox.config_dir_for(task_id) / "claude.pid"


def run_task(task_id: int) -> str:
    """The RQ job: run the next attempt of a task while holding the task's lease.

    The lease (app.queue.TaskLock) makes sure no two runs of a task overlap: a retry of an
    abandoned job, a job the reconciler re-enqueued or a duplicate all wait for it; a holder that
    died lets it lapse after `task_lock_ttl_s`. A run that cannot get it in that time leaves the
    task to the live holder. A run that loses its lease (starved past its TTL while another took
    it) kills its claude process and writes nothing to the task (see `holds_lease`).
    """
    global _lease
    lock = TaskLock(task_id)
    if not lock.acquire(wait_s=lock.ttl_s + 5):
        log.warning("task %s: another run holds its lease; leaving the task to it", task_id)
        return "another run of this task is active"
    _lease = lock
    try:
        service.backfill_events(task_id)  # what a killed run published but did not store
        with lock.kept_alive(on_lost=lambda: kill_leftover_group(task_id)):
            return run_attempt(task_id)
    finally:
        _lease = None
        lock.release()


_lease: TaskLock | None = None  # the lease of the run in this work horse (one job per horse)
SUPERSEDED = "superseded: another run of the task took over its lease"


def holds_lease() -> bool:
    """Whether this run still holds its task's lease (True outside run_task, e.g. in tests)."""
    return _lease is None or _lease.refresh()


def cli_env() -> dict[str, str]:
    """Environment for the claude CLI set by the engine: how often it retries API errors itself
    (see README, Retries). An explicit CLAUDE_CODE_MAX_RETRIES in the environment wins."""
    if "CLAUDE_CODE_MAX_RETRIES" in os.environ:
        return {}
    return {"CLAUDE_CODE_MAX_RETRIES": str(get_settings().cli_max_retries)}


def run_attempt(task_id: int) -> str:
    """Run the next attempt of a task (the first run, a retry or a follow-up)."""
    settings = get_settings()
    job = get_current_job()
    with session_scope() as session:
        task = session.get(Task, task_id)
        if task is None:
            return "task not found"
        if task.status in TaskStatus.TERMINAL:
            return f"task already {task.status}"
    # An attempt still marked running here means the worker that ran it died.
    service.close_open_attempts(task_id, TaskStatus.FAILED, "worker lost")
    # duration_ms is the latest run's: a run that ends without a result shows its start-to-end.
    if not service.transition(
        task_id,
        TaskStatus.ACTIVE,
        TaskStatus.RUNNING,
        started_at=utcnow(),
        status_reason=None,
        duration_ms=0,
    ):
        return "task no longer runnable"

    with session_scope() as session:
        task = session.get(Task, task_id)
        kind = task.pending_kind if task.attempts_count else "run"
        if task.attempts_count and kind == "run":
            kind = "retry"
        prompt = task.pending_prompt if kind == "follow_up" and task.pending_prompt else task.prompt
        task.attempts_count += 1
        attempt = Attempt(
            task_id=task_id,
            number=task.attempts_count,
            kind=kind,
            prompt=prompt,
            worker=worker_name(),
            rq_job_id=job.id if job else None,
        )
        session.add(attempt)
        session.add(task)
        session.flush()
        snapshot = Task.model_validate(task.model_dump())
        attempt_id, number = attempt.id, attempt.number
    service.publish_status(task_id, TaskStatus.RUNNING, f"attempt {number}", attempt=number)

    recorder = EventRecorder(task_id)
    try:
        if snapshot.repo:  # a git worktree on branch taskdeck/<id>, made by run_claude
            place = dict(repo=snapshot.repo, base_ref=snapshot.base_ref, workspace_id=str(task_id))
            cwd = str(workspace.workspace_path(task_id))
        else:
            cwd = snapshot.cwd or str(sandbox.task_workspace(task_id))
            place = dict(cwd=cwd)
        with session_scope() as session:
            row = session.get(Task, task_id)
            row.workspace = cwd
            session.add(row)
        spec = RunSpec(
            prompt=prompt,
            **place,
            model=snapshot.model,
            max_turns=snapshot.max_turns,
            allowed_tools=snapshot.allowed_tools,
            permission_mode=snapshot.permission_mode,
            resume=snapshot.session_id if kind == "follow_up" else None,
            session_cost_usd=(
                service.session_cost(task_id, snapshot.session_id) if kind == "follow_up" else 0.0
            ),
            timeout_s=snapshot.timeout_s or settings.task_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            config_dir=str(sandbox.config_dir_for(task_id)),
            pid_file=str(pid_file_for(task_id)),
            env=cli_env(),
        )
        outcome = asyncio.run(run_claude(spec, recorder.emit, attempt=number))
    except Exception as exc:  # our own bug or a broken workspace: the task must still end
        log.exception("task %s attempt %s crashed", task_id, number)
        outcome = RunOutcome(
            error=ErrorEvent(attempt=number, kind="runner_crashed", message=f"{exc!r}")
        )
        recorder.emit(outcome.error)
    finally:
        recorder.flush()
    return finish_attempt(task_id, attempt_id, number, outcome, job)


def failure_reason(outcome: RunOutcome) -> str:
    """A one-line reason for a failed outcome, for people."""
    if outcome.error is not None:
        return outcome.error.message
    result = outcome.result
    if result is None:
        return "claude ended without a result"
    if result.subtype == "error_max_turns":
        return "max turns reached before the task was done"
    if result.api_error_status:
        return f"API error {result.api_error_status}: {(result.text or '').strip()[:300]}"
    return (result.text or result.subtype or "claude reported an error").strip()[:500]


def is_retryable(outcome: RunOutcome) -> bool:
    """Whether another attempt could succeed (transient API or network trouble, a hang)."""
    if outcome.error is not None:
        return outcome.error.kind in RETRYABLE_ERROR_KINDS
    result = outcome.result
    if result is None or not result.is_error:
        return False
    if result.api_error_status in RETRYABLE_API_STATUSES:
        return True
    if result.api_error_status is not None or result.subtype == "error_max_turns":
        return False
    # No HTTP status: the request never got an answer (refused, reset, DNS, timeout). The CLI
    # words it "API Error: Connection refused ... (ECONNREFUSED)", "network:ConnectionError"...
    return bool(TRANSIENT_TEXT.search(result.text or ""))


def finish_attempt(task_id: int, attempt_id: int, number: int, outcome: RunOutcome, job) -> str:  # noqa: ANN001
    """Store the outcome on the attempt and the task; raise RetryableFailure to be retried."""
    if not holds_lease():  # fenced: the run that holds the lease owns the task now
        service.close_open_attempts(task_id, TaskStatus.FAILED, SUPERSEDED)
        log.error("task %s attempt %s: %s", task_id, number, SUPERSEDED)
        return SUPERSEDED
    result = outcome.result
    usage = {}
    if result is not None:
        usage = dict(
            cost_usd=result.cost_usd,  # the run's own (worker/usage.py run_cost)
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cache_read_tokens=result.cache_read_tokens,
            cache_creation_tokens=result.cache_creation_tokens,
            num_turns=result.num_turns,
            duration_ms=result.duration_ms,
        )
    else:  # no result (a timeout, a crash): what its usage events counted was still spent
        usage = service.usage_so_far(task_id, number)
    if outcome.ok:
        status, reason = TaskStatus.SUCCEEDED, None
    else:
        status, reason = TaskStatus.FAILED, failure_reason(outcome)
    with session_scope() as session:
        attempt = session.get(Attempt, attempt_id)
        attempt.status = status
        attempt.reason = reason
        attempt.finished_at = utcnow()
        attempt.session_id = outcome.session_id
        for key, value in usage.items():
            setattr(attempt, key, value)
        session.add(attempt)
    task_values = {"session_id": outcome.session_id} if outcome.session_id else {}
    if outcome.diff is not None:  # a git workspace: what the task changed since its base
        task_values.update(
            files_changed=outcome.diff.files_changed,
            lines_added=outcome.diff.lines_added,
            lines_removed=outcome.diff.lines_removed,
            diff=outcome.diff.patch,
        )
    if result is not None:
        task_values.update(
            result_text=result.text, num_turns=result.num_turns, duration_ms=result.duration_ms
        )
    # Cost and tokens are the task's over all its attempts (retries and follow-ups spend too).
    task_values.update(service.usage_totals(task_id))
    retries_left = (job.retries_left or 0) if job is not None else 0
    if status == TaskStatus.FAILED and is_retryable(outcome) and retries_left > 0:
        retry_reason = f"retrying after: {reason}"
        if service.transition(  # ACTIVE: a lease holder owns the task even if it was re-queued
            task_id,
            TaskStatus.ACTIVE,
            TaskStatus.QUEUED,
            status_reason=retry_reason,
            **task_values,
        ):
            service.publish_status(task_id, TaskStatus.QUEUED, retry_reason, attempt=number)
        raise RetryableFailure(reason)
    if service.transition(
        task_id,
        TaskStatus.ACTIVE,
        status,
        status_reason=reason,
        finished_at=utcnow(),
        pending_prompt=None,
        **task_values,
    ):
        service.publish_status(task_id, status, reason, attempt=number)
    return status


def _task_id_of(job) -> int | None:  # noqa: ANN001
    try:
        return int(job.args[0])
    except (IndexError, TypeError, ValueError):
        return None


def worker_is_gone(name: str | None) -> bool:
    """Whether a worker (named host.pid) ran on this host and its process no longer exists.

    Its work horse, and the horse's claude, died with it (PR_SET_PDEATHSIG, worker/__main__.py).
    A worker of another host, or a pid now reused, counts as alive: its run keeps its lease.
    """
    from worker.graceful import worker_name as this_worker

    host, _, pid = (name or "").rpartition(".")
    if not pid.isdigit() or host != this_worker().rpartition(".")[0]:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def on_job_failure(job, connection, exc_type, exc_value, tb) -> None:  # noqa: ANN001
    """RQ failure callback: a job that died without ending its task (crash, lost worker)."""
    task_id = _task_id_of(job)
    if task_id is None or exc_type is RetryableFailure:
        return
    reason = "worker lost" if exc_type is AbandonedJobError else f"{exc_type.__name__}: {exc_value}"
    service.backfill_events(task_id)  # what the lost run published but did not store
    service.close_open_attempts(task_id, TaskStatus.FAILED, reason)
    kill_leftover_group(task_id)
    if exc_type is AbandonedJobError and worker_is_gone(job.worker_name):
        TaskLock.break_for(task_id)  # its run died with it: the retry need not wait for the lease
    if (job.retries_left or 0) > 0:
        moved = service.transition(
            task_id, [TaskStatus.RUNNING], TaskStatus.QUEUED, status_reason=f"retrying: {reason}"
        )
        if moved:
            service.publish_status(task_id, TaskStatus.QUEUED, f"retrying: {reason}")
        return
    if service.transition(
        task_id, TaskStatus.ACTIVE, TaskStatus.FAILED, status_reason=reason, finished_at=utcnow()
    ):
        service.publish_status(task_id, TaskStatus.FAILED, reason)


def on_job_stopped(job, connection) -> None:  # noqa: ANN001
    """RQ stopped callback (cancel): make sure no process of the task outlives it."""
    task_id = _task_id_of(job)
    if task_id is None:
        return
    kill_leftover_group(task_id)
    TaskLock.break_for(task_id)  # its work horse is dead: no run holds the lease any more
    service.close_open_attempts(task_id, TaskStatus.CANCELLED, "cancelled by user")
    if service.transition(
        task_id,
        TaskStatus.ACTIVE,
        TaskStatus.CANCELLED,
        status_reason="cancelled",
        finished_at=utcnow(),
    ):
        service.publish_status(task_id, TaskStatus.CANCELLED, "cancelled")


def kill_leftover_group(task_id: int) -> None:
    """Kill the process group of the task's last claude process, if it still runs here."""
    pgid = sandbox.read_pid(pid_file_for(task_id))
    if pgid:
        sandbox.kill_group(pgid, grace_s=1.0)
