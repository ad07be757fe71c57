"""Recovery: a worker killed with SIGKILL mid-task and a Redis restart lose no task and never run
one twice at the same time. Real worker pool, real redis-server, real claude CLI."""

from __future__ import annotations

import os
import signal
import time

import pytest
from redis import Redis
from rq import Worker

from app import service
from app.db import aware
from app.queue import get_redis, job_id_for
from app.schemas import TaskCreate
from tests.conftest import RedisServer, WorkerPool, wait_for_status, wait_until
from worker import sandbox
from worker.jobs import pid_file_for


def _worker_running(task_id: int) -> Worker | None:
    for worker in Worker.all(connection=get_redis()):
        if (worker.get_current_job_id() or "").startswith(f"task-{task_id}-"):
            return worker
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_worker_mid_run(task_id: int) -> tuple[float, int]:
    """SIGKILL the worker running the task once claude streams; returns (when, claude pid)."""
    wait_until(
        lambda: (
            any(e.type == "text_delta" or e.type == "init" for e in service.list_events(task_id))
            or _claude_pid(task_id)
        ),
        60,
        message="claude to start",
    )
    worker = wait_until(lambda: _worker_running(task_id), 30, message="the worker of the task")
    claude = wait_until(lambda: _claude_pid(task_id), 30, message="claude's pid")
    os.kill(worker.pid, signal.SIGKILL)
    return time.monotonic(), claude


def _claude_pid(task_id: int) -> int | None:
    return sandbox.read_pid(pid_file_for(task_id))


@pytest.fixture
def pool(env, tmp_path):
    pool = WorkerPool(env, workers=1, log=tmp_path / "pool.log").start()
    yield pool
    pool.stop()


def test_a_worker_killed_mid_task_is_detected_and_the_task_retried(env, pool):
    task = service.create_task(
        TaskCreate(prompt="long [scenario:slow] [delay:0.4]", max_attempts=2)
    )
    wait_for_status(task.id, ("running",), timeout=60)
    killed_at, claude = _kill_worker_mid_run(task.id)

    # The claude process dies with its work horse, at once.
    wait_until(lambda: not _alive(claude), 10, message="claude to die with its worker")
    # Within 60 s the lost attempt is closed as "worker lost" and the task goes on.
    wait_until(
        lambda: (a := service.list_attempts(task.id)) and a[0].status == "failed",
        60,
        interval=0.2,
        message="the lost attempt to be closed",
    )
    assert time.monotonic() - killed_at < 60
    first = service.list_attempts(task.id)[0]
    assert first.reason == "worker lost"

    done = wait_for_status(task.id, ("succeeded", "failed"), timeout=120)
    assert done.status == "succeeded", done.status_reason
    attempts = service.list_attempts(task.id)
    assert [(a.number, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert aware(attempts[1].started_at) >= aware(attempts[0].finished_at)


def test_a_worker_killed_on_the_last_attempt_fails_the_task_worker_lost(env, pool):
    task = service.create_task(
        TaskCreate(prompt="long again [scenario:slow] [delay:0.4]", max_attempts=1)
    )
    wait_for_status(task.id, ("running",), timeout=60)
    killed_at, _ = _kill_worker_mid_run(task.id)

    done = wait_for_status(task.id, ("succeeded", "failed"), timeout=60)

    assert time.monotonic() - killed_at < 60
    assert done.status == "failed"
    assert done.status_reason == "worker lost"
    assert [(a.status, a.reason) for a in service.list_attempts(task.id)] == [
        ("failed", "worker lost")
    ]


@pytest.fixture
def fresh_redis(env, tmp_path, monkeypatch):
    """A redis-server of this test only, without persistence (a restart forgets everything)."""
    from app.settings import get_settings

    server = RedisServer(tmp_path, appendonly=False).start()
    monkeypatch.setenv("TASKDECK_REDIS_URL", server.url)
    monkeypatch.setenv("TASKDECK_RECONCILE_INTERVAL_S", "2")
    get_settings.cache_clear()
    yield server, {**env, "TASKDECK_REDIS_URL": server.url, "TASKDECK_RECONCILE_INTERVAL_S": "2"}
    server.stop()


def test_redis_losing_everything_loses_no_task(fresh_redis, tmp_path):
    server, values = fresh_redis
    tasks = [service.create_task(TaskCreate(prompt=f"t{i} [scenario:text]")) for i in range(3)]
    server.restart()  # no persistence: the jobs are gone
    assert Redis.from_url(server.url).dbsize() == 0

    pool = WorkerPool(values, workers=1, log=tmp_path / "pool.log").start()
    try:
        for task in tasks:
            done = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)
            assert done.status == "succeeded", done.status_reason
            assert len(service.list_attempts(task.id)) == 1
    finally:
        pool.stop()


def test_a_running_task_survives_a_redis_restart_and_runs_once(fresh_redis, tmp_path):
    server, values = fresh_redis
    pool = WorkerPool(values, workers=1, log=tmp_path / "pool.log").start()
    try:
        task = service.create_task(TaskCreate(prompt="long [scenario:slow] [delay:0.3]"))
        wait_until(lambda: _claude_pid(task.id), 60, message="claude to start")
        server.restart()  # the job, the lease and the registries are gone mid-run

        done = wait_for_status(task.id, ("succeeded", "failed"), timeout=120)
        assert done.status == "succeeded", done.status_reason
        # The run kept its lease (taken back after the restart): nothing started a second one.
        time.sleep(2 * 2 + 1)
        assert [a.status for a in service.list_attempts(task.id)] == ["succeeded"]
        assert service.get_task(task.id).status == "succeeded"
    finally:
        pool.stop()
    assert job_id_for(task.id, 1)


def test_a_lost_worker_and_a_lost_redis_together_still_end_the_task(fresh_redis, tmp_path):
    server, values = fresh_redis
    pool = WorkerPool(values, workers=1, log=tmp_path / "pool.log").start()
    try:
        task = service.create_task(
            TaskCreate(prompt="doomed [scenario:slow] [delay:0.4]", max_attempts=2)
        )
        wait_for_status(task.id, ("running",), timeout=60)
        _kill_worker_mid_run(task.id)
        server.restart()  # the abandoned-job registry is gone too: only the reconciler knows

        done = wait_for_status(task.id, ("succeeded", "failed"), timeout=120)

        assert done.status == "succeeded", done.status_reason
        attempts = service.list_attempts(task.id)
        assert [(a.status, a.reason) for a in attempts] == [
            ("failed", "worker lost"),
            ("succeeded", None),
        ]
    finally:
        pool.stop()


def test_a_run_that_loses_its_lease_stops_and_writes_nothing(fresh_redis, tmp_path):
    from app.queue import TaskLock
    from worker.jobs import SUPERSEDED

    server, values = fresh_redis
    pool = WorkerPool(
        {**values, "TASKDECK_TASK_LOCK_TTL_S": "4"}, workers=1, log=tmp_path / "pool.log"
    ).start()
    try:
        task = service.create_task(
            TaskCreate(prompt="usurped [scenario:slow] [delay:0.4]", max_attempts=2)
        )
        claude = wait_until(lambda: _claude_pid(task.id), 60, message="claude to start")
        # Another run takes the lease (as if this one had been starved past its TTL).
        get_redis().set(TaskLock.key_for(task.id), "another-run", ex=6)

        wait_until(lambda: not _alive(claude), 15, message="the usurped run to kill claude")
        wait_until(
            lambda: (a := service.list_attempts(task.id)) and a[0].reason == SUPERSEDED,
            30,
            message="the usurped attempt to be closed",
        )
        assert service.get_task(task.id).status == "running"  # left to the lease holder

        # The usurper never finishes it: once its lease lapses the reconciler takes it back.
        done = wait_for_status(task.id, ("succeeded", "failed"), timeout=120)
        assert done.status == "succeeded", done.status_reason
        assert [a.status for a in service.list_attempts(task.id)] == ["failed", "succeeded"]
    finally:
        pool.stop()


def test_only_a_worker_of_this_host_whose_process_is_gone_counts_as_gone(env):
    import subprocess

    from worker.graceful import worker_name
    from worker.jobs import worker_is_gone

    host = worker_name().rpartition(".")[0]
    child = subprocess.Popen(["true"])
    child.wait()
    assert worker_is_gone(f"{host}.{child.pid}")
    assert not worker_is_gone(f"{host}.{os.getpid()}")
    assert not worker_is_gone(f"elsewhere.{child.pid}")
    assert not worker_is_gone(None)


def test_events_published_but_not_stored_are_backfilled_from_the_stream(env):
    from app import live
    from app.events import StatusEvent

    task = service.create_task(TaskCreate(prompt="backfill"))
    stream_id = live.publish(task.id, StatusEvent(status="running", reason="x", attempt=1))
    assert stream_id not in {e.stream_id for e in service.list_events(task.id)}

    assert service.backfill_events(task.id) == 1

    assert stream_id in {e.stream_id for e in service.list_events(task.id)}
    assert service.backfill_events(task.id) == 0


def test_an_event_is_kept_in_the_database_while_redis_is_away(env, monkeypatch):
    from app.events import StatusEvent
    from app.settings import get_settings
    from tests.conftest import free_port

    task = service.create_task(TaskCreate(prompt="redis away"))
    monkeypatch.setattr(service, "PUBLISH_RETRY_S", (0.01,))
    monkeypatch.setenv("TASKDECK_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()

    event = StatusEvent(status="running", reason="offline", attempt=1)
    stream_id = service.publish_event(task.id, event)
    service.record_events(task.id, [(stream_id, event)])

    stored = [e for e in service.list_events(task.id) if e.data.get("reason") == "offline"]
    assert [e.stream_id for e in stored] == [stream_id]
    assert int(stream_id.split("-")[1]) > service.LOCAL_SEQ_BASE


def test_a_retried_publish_never_adds_the_same_event_twice(env, monkeypatch):
    from app import live
    from app.events import StatusEvent

    task = service.create_task(TaskCreate(prompt="twice"))
    event = StatusEvent(status="running", reason="once", attempt=1)
    landed = live.publish(task.id, event)  # Redis took it, but the reply is lost:
    real_publish, calls = live.publish, []

    def reply_lost(task_id, ev, redis=None):  # noqa: ANN001, ANN202
        calls.append(ev)
        if len(calls) == 1:
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("connection reset")
        return real_publish(task_id, ev, redis)

    monkeypatch.setattr(live, "publish", reply_lost)
    monkeypatch.setattr(service, "PUBLISH_RETRY_S", (0.01,))

    assert service.publish_event(task.id, event) == landed
    stored = [sid for sid, ev in live.read(task.id) if getattr(ev, "reason", None) == "once"]
    assert stored == [landed]
