"""Chaos: 200 scripted tasks through 4 worker processes while a killer SIGKILLs a random worker
every few seconds and Redis is restarted once (with its append-only file, as in production).

Asserts that every task ends, at least 99.5% succeed, no event of a finished attempt is lost
(every event its run published to Redis is in the database) and no task ever ran twice at the
same time (its attempts, and their events, never overlap).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from app import live, service
from app.db import aware
from app.models import TaskStatus
from app.schemas import TaskCreate
from tests.conftest import RedisServer, WorkerPool, wait_until

TASKS = 200
WORKERS = 4


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Killer(threading.Thread):
    """SIGKILLs one random worker process of the pool every 2-4 seconds."""

    def __init__(self, pool_pid: int) -> None:
        super().__init__(daemon=True)
        self.pool_pid = pool_pid
        self.kills = 0
        self.stop = threading.Event()
        self.random = random.Random(5)

    def run(self) -> None:
        while not self.stop.wait(self.random.uniform(2.0, 4.0)):
            workers = _children(self.pool_pid)
            if workers:
                try:
                    os.kill(self.random.choice(workers), signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass


@pytest.fixture
def chaos_env(env, tmp_path, monkeypatch):
    from app.settings import get_settings

    server = RedisServer(tmp_path, appendonly=True).start()
    values = {
        **env,
        "TASKDECK_REDIS_URL": server.url,
        "TASKDECK_RECONCILE_INTERVAL_S": "3",
        "TASKDECK_JOB_MONITORING_INTERVAL_S": "3",  # lease and heartbeat grace: the defaults
        "TASKDECK_METRICS_INTERVAL_S": "60",
    }
    # As in production, the claude CLI retries a refused or reset connection itself (twice).
    values.pop("CLAUDE_CODE_MAX_RETRIES", None)
    monkeypatch.delenv("CLAUDE_CODE_MAX_RETRIES", raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield server, values
    server.stop()


@pytest.mark.chaos
@pytest.mark.timeout(420)
def test_chaos_kills_and_a_redis_restart_lose_nothing(chaos_env, tmp_path):
    server, values = chaos_env
    tasks = [
        service.create_task(TaskCreate(prompt=f"chaos {i} [scenario:text]", max_attempts=5))
        for i in range(TASKS)
    ]
    ids = [t.id for t in tasks]
    pool = WorkerPool(values, workers=WORKERS, log=tmp_path / "pool.log").start()
    killer = Killer(pool.process.pid)
    started = time.monotonic()
    try:
        wait_until(lambda: _ended(ids) >= 5, 120, interval=0.5, message="the first tasks")
        killer.start()
        wait_until(lambda: _ended(ids) >= TASKS // 3, 180, interval=0.5, message="a third")
        server.restart()
        restarted_at = time.monotonic()
        wait_until(lambda: _ended(ids) == TASKS, 200, interval=1.0, message="every task to end")
    finally:
        killer.stop.set()
        killer.join(10)
        pool.stop()
    elapsed = time.monotonic() - started
    final = [service.get_task(i) for i in ids]
    every = [a for i in ids for a in service.list_attempts(i)]
    lost = sum(a.reason == "worker lost" for a in every)
    print(
        f"chaos: {TASKS} tasks in {elapsed:.0f}s, {killer.kills} workers killed, redis "
        f"restarted at {restarted_at - started:.0f}s; {len(every)} attempts, {lost} lost with "
        f"their worker, {sum(t.status == 'succeeded' for t in final)} succeeded"
    )
    assert all(t.status in TaskStatus.TERMINAL for t in final)
    succeeded = sum(t.status == TaskStatus.SUCCEEDED for t in final)
    for task in final:
        if task.status != TaskStatus.SUCCEEDED:
            print(f"chaos: task {task.id} {task.status}: {task.status_reason}")
            for attempt in service.list_attempts(task.id):
                print(f"  attempt {attempt.number} {attempt.status}: {attempt.reason}")
            for event in service.list_events(task.id):
                if event.type in ("result", "error", "api_retry"):
                    print(f"  {event.type} {event.attempt}: {event.data}")
    assert succeeded >= 0.995 * TASKS, [
        (t.id, t.status, t.status_reason) for t in final if t.status != TaskStatus.SUCCEEDED
    ]
    assert killer.kills >= 5

    for task in final:
        attempts = service.list_attempts(task.id)
        events = service.list_events(task.id, limit=100_000)
        # Never twice at the same time: each attempt ended before the next one started ...
        for before, after in zip(attempts, attempts[1:], strict=False):
            assert aware(before.finished_at) <= aware(after.started_at), (task.id, attempts)
        # ... and no event of an earlier attempt came after a later attempt began.
        runs = [e for e in events if e.attempt > 0]  # attempt 0: the engine's status events
        first_ts = {}
        for event in runs:
            first_ts.setdefault(event.attempt, event.ts)
        for event in runs:
            later = [ts for n, ts in first_ts.items() if n > event.attempt]
            assert not later or event.ts <= min(later), (task.id, event)
        # No event of a finished attempt lost: what its run published is all in the database.
        stored = {e.stream_id for e in events}
        finished = {a.number for a in attempts if a.reason != "worker lost"}
        published = [
            (sid, ev)
            for sid, ev in live.read(task.id, count=100_000)
            if ev.attempt in finished and ev.type != "text_delta"
        ]
        missing = [(sid, ev.model_dump()) for sid, ev in published if sid not in stored]
        assert not missing, (task.id, missing, [(a.number, a.status, a.reason) for a in attempts])
        if task.status == TaskStatus.SUCCEEDED:
            last = attempts[-1]
            kinds = [e.type for e in events if e.attempt == last.number]
            assert "init" in kinds and "result" in kinds, (task.id, kinds)


def _ended(ids: list[int]) -> int:
    counts = service.count_by_status()
    return sum(counts[status] for status in TaskStatus.TERMINAL)
