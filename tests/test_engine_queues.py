"""Queue control: priorities, paused queues, concurrency limits (RQ RateLimit), cancel of queued
and running tasks, requeue of failed tasks and bulk actions."""

from __future__ import annotations

import os
import time

import pytest
from rq import Queue

from app import service
from app.db import aware
from app.queue import TaskLock, get_redis, job_id_for, rate_limit_for
from app.schemas import TaskCreate
from tests.conftest import WorkerPool, wait_for_status, wait_until
from worker import sandbox
from worker.jobs import pid_file_for


def _text(name: str, **fields) -> TaskCreate:
    return TaskCreate(prompt=f"{name} [scenario:text]", **fields)


def test_a_paused_queue_starts_nothing_until_resumed(env, worker_pool):
    service.pause_queue("default")
    assert service.queue_overview("default").paused
    waiting = service.create_task(_text("waits"))
    urgent = service.create_task(_text("urgent", priority="high"))

    assert wait_for_status(urgent.id, ("succeeded",), timeout=60).status == "succeeded"
    time.sleep(3)  # longer than a worker's pause poll
    assert service.get_task(waiting.id).status == "queued"
    assert Queue("taskdeck-default", connection=get_redis()).count == 1

    service.resume_queue("default")
    assert wait_for_status(waiting.id, ("succeeded",), timeout=60).status == "succeeded"
    assert service.paused_queues() == []


def test_paused_queues_come_back_from_the_database_after_redis_forgets(env):
    from worker.reconcile import reconcile_once

    service.pause_queue("low")
    get_redis().flushdb()
    assert service.paused_queues() == ["taskdeck-low"]  # the row stays
    reconcile_once()
    from app.queue import paused_queue_names

    assert paused_queue_names() == {"taskdeck-low"}


def test_the_global_limit_holds_jobs_back_in_redis(env, monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_GLOBAL_CONCURRENCY", "1")
    get_settings.cache_clear()
    tasks = [service.create_task(_text(f"limited {i}")) for i in range(3)]

    overview = service.queue_overview("default")
    assert (overview.queued, overview.rate_limited) == (1, 2)
    # Cancelling the released one lets the next through, atomically.
    service.cancel_task(tasks[0].id)
    overview = service.queue_overview("default")
    assert (overview.queued, overview.rate_limited) == (1, 1)


def test_repository_tasks_count_against_their_repository(env, monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_REPO_CONCURRENCY", "1")
    monkeypatch.setenv("TASKDECK_GLOBAL_CONCURRENCY", "5")
    get_settings.cache_clear()
    one, other = rate_limit_for("/srv/a"), rate_limit_for("/srv/b")
    assert one.key != other.key and one.concurrency == 1
    assert rate_limit_for(None).key == "taskdeck-global" and rate_limit_for(None).concurrency == 5


def test_global_limit_of_one_runs_tasks_one_at_a_time(env, tmp_path):
    values = {**env, "TASKDECK_GLOBAL_CONCURRENCY": "1"}
    os.environ["TASKDECK_GLOBAL_CONCURRENCY"] = "1"
    from app.settings import get_settings

    get_settings.cache_clear()
    pool = WorkerPool(values, workers=2, log=tmp_path / "pool.log").start()
    try:
        tasks = [
            service.create_task(TaskCreate(prompt=f"s{i} [scenario:slow] [delay:0.05]"))
            for i in range(3)
        ]
        for task in tasks:
            assert wait_for_status(task.id, ("succeeded",), timeout=90).status == "succeeded"
    finally:
        pool.stop()
        del os.environ["TASKDECK_GLOBAL_CONCURRENCY"]
    spans = sorted(
        (aware(a.started_at), aware(a.finished_at))
        for t in tasks
        for a in service.list_attempts(t.id)
    )
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, spans


def test_cancel_of_a_queued_task_removes_its_job(env):
    task = service.create_task(_text("never"))
    cancelled = service.cancel_task(task.id)
    assert cancelled.status == "cancelled"
    assert Queue("taskdeck-default", connection=get_redis()).count == 0
    with pytest.raises(service.InvalidTransition):
        service.cancel_task(task.id)


def test_cancel_of_a_running_task_kills_claude_and_frees_the_lease(env, worker_pool):
    task = service.create_task(TaskCreate(prompt="long [scenario:slow] [delay:0.5]"))
    claude = wait_until(lambda: sandbox.read_pid(pid_file_for(task.id)), 60, message="claude")

    service.cancel_task(task.id)

    done = wait_for_status(task.id, ("cancelled",), timeout=30)
    assert done.status == "cancelled"
    wait_until(lambda: not _alive(claude), 15, message="claude to be killed")
    wait_until(lambda: not TaskLock.is_held(task.id), 15, message="the lease to be released")
    assert [a.status for a in service.list_attempts(task.id)] == ["cancelled"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_requeue_failed_and_bulk_actions(env, worker_pool):
    failing = [
        service.create_task(TaskCreate(prompt=f"bad {i} [scenario:error_400]")) for i in range(2)
    ]
    for task in failing:
        wait_for_status(task.id, ("failed",), timeout=60)

    result = service.requeue_failed()

    assert sorted(result.done) == sorted(t.id for t in failing)
    for task in failing:
        wait_until(lambda t=task: len(service.list_attempts(t.id)) == 2, 60, message="re-run")
    # Bulk cancel: the queued ones are cancelled, the finished one is reported as skipped.
    service.pause_queue("low")
    queued = [service.create_task(_text(f"q{i}", priority="low")) for i in range(2)]
    done = wait_for_status(failing[0].id, ("failed",), timeout=60)
    outcome = service.cancel_many([*[t.id for t in queued], done.id, 999_999])
    assert outcome.done == [t.id for t in queued]
    assert set(outcome.skipped) == {done.id, 999_999}
    assert [service.get_task(t.id).status for t in queued] == ["cancelled", "cancelled"]
    retried = service.retry_many([t.id for t in queued])
    assert retried.done == [t.id for t in queued]
    assert service.get_task(queued[0].id).status == "queued"
    assert job_id_for(queued[0].id, 2) in Queue("taskdeck-low", connection=get_redis()).job_ids
