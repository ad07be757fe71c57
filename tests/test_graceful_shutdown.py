"""SIGTERM to a worker pool: running tasks finish (within the grace period) or are handed back to
the queue; a rolling restart of the worker pools loses nothing."""

from __future__ import annotations

import os
import signal

from rq.job import Job

from app import service
from app.db import session_scope
from app.models import Task
from app.queue import get_redis, job_id_for
from app.schemas import TaskCreate
from tests.conftest import WorkerPool, wait_for_status, wait_until
from worker.graceful import HANDED_BACK


def slow_task(seconds: float) -> int:
    """A task whose claude run streams 20 text deltas `seconds / 20` apart."""
    prompt = f"Say something slowly [scenario:slow] [delay:{seconds / 20:.2f}]"
    return service.create_task(TaskCreate(prompt=prompt, max_turns=3)).id


def pool(
    env: dict[str, str], tmp_path, host: str, workers: int = 1, grace_s: int = 60
) -> WorkerPool:  # noqa: ANN001
    values = {**env, "TASKDECK_WORKER_HOST": host, "TASKDECK_SHUTDOWN_GRACE_S": str(grace_s)}
    return WorkerPool(values, workers=workers, log=tmp_path / f"worker-{host}.log").start()


def sigterm(worker_pool: WorkerPool) -> None:
    """What `docker stop` or a rolling restart sends: SIGTERM to the pool process only."""
    os.kill(worker_pool.process.pid, signal.SIGTERM)


def running_on(task_id: int) -> str | None:
    task = service.get_task(task_id)
    attempts = service.list_attempts(task_id)
    if task.status == "running" and attempts and attempts[-1].status == "running":
        return attempts[-1].worker
    return None


def test_sigterm_lets_the_running_task_finish(env, tmp_path):
    first = pool(env, tmp_path, "alpha")
    try:
        task_id = slow_task(6)
        worker = wait_until(lambda: running_on(task_id), 90, message="the task to run")
        assert worker.startswith("alpha.")
        sigterm(first)
        first.process.wait(90)  # the pool exits only once its task is done
        task = service.get_task(task_id)
        assert task.status == "succeeded", task.status_reason
        attempts = service.list_attempts(task_id)
        assert [(a.number, a.status, a.worker) for a in attempts] == [(1, "succeeded", worker)]
    finally:
        first.stop()


def test_past_the_grace_period_the_task_is_handed_back_and_finished_elsewhere(env, tmp_path):
    first = pool(env, tmp_path, "alpha", grace_s=1)
    second = None
    try:
        task_id = slow_task(20)
        wait_until(lambda: running_on(task_id), 90, message="the task to run")
        sigterm(first)
        first.process.wait(30)  # well before the task could have finished
        task = service.get_task(task_id)
        assert task.status == "queued", (task.status, task.status_reason)
        assert task.status_reason == HANDED_BACK
        with session_scope() as session:
            job_id = job_id_for(task_id, session.get(Task, task_id).runs)
        job = Job.fetch(job_id, connection=get_redis())
        assert job.get_status() == "queued"
        assert job.retries_left == task.max_attempts - 1, "a shutdown must not cost a retry"

        second = pool(env, tmp_path, "beta")
        task = wait_for_status(task_id, ("succeeded", "failed"), timeout=120)
        assert task.status == "succeeded", task.status_reason
        attempts = service.list_attempts(task_id)
        assert [a.status for a in attempts] == ["failed", "succeeded"]
        assert attempts[0].reason.startswith("interrupted") and attempts[0].worker.startswith(
            "alpha."
        )
        assert attempts[1].worker.startswith("beta.")
    finally:
        first.stop()
        if second:
            second.stop()


def test_a_rolling_restart_loses_nothing(env, tmp_path):
    """Pool a runs tasks; b starts and a stops; c starts and b stops. Every task succeeds, and
    none fails an attempt except the hand-backs of the short grace period."""
    pools = [pool(env, tmp_path, "a", workers=2, grace_s=2)]
    try:
        task_ids = [slow_task(seconds) for seconds in (1, 3, 5, 1, 3, 5, 1, 3)]
        for host in ("b", "c"):
            wait_until(lambda: any(running_on(t) for t in task_ids), 120, message="a running task")
            pools.append(pool(env, tmp_path, host, workers=2, grace_s=2))
            sigterm(pools[-2])
            pools[-2].process.wait(60)
        for task_id in task_ids:
            task = wait_for_status(task_id, ("succeeded", "failed", "cancelled"), timeout=180)
            assert task.status == "succeeded", (task_id, task.status_reason)
            for attempt in service.list_attempts(task_id)[:-1]:
                assert attempt.reason.startswith("interrupted"), attempt.reason
        hosts = {a.worker.split(".")[0] for t in task_ids for a in service.list_attempts(t)}
        assert len(hosts) >= 2, hosts
    finally:
        for worker_pool in pools:
            worker_pool.stop()
