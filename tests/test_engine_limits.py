"""Concurrency limits together: the global limit AND the per-repository limit hold at once (a
repository's job carries its repository's RQ RateLimit and takes a global slot at the second
gate), and a paused queue keeps no slot. Real redis-server, real worker pool, real claude CLI."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from rq import Queue, Worker
from rq.job import Job
from rq.rate_limit import RateLimitRegistry

from app import service
from app.db import aware
from app.queue import (
    GLOBAL_LIMIT_KEY,
    get_queue,
    get_redis,
    job_id_for,
    job_is_placed,
    pass_global_gate,
    release_global_gate,
    settle_paused_queues,
)
from app.schemas import TaskCreate
from tests.conftest import WorkerPool, wait_for_status, wait_until


def _limits(monkeypatch, global_limit: int, repo_limit: int) -> None:
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_GLOBAL_CONCURRENCY", str(global_limit))
    monkeypatch.setenv("TASKDECK_REPO_CONCURRENCY", str(repo_limit))
    get_settings.cache_clear()


def _repo(path: Path) -> str:
    path.mkdir(parents=True)
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@example.com"],
        ["config", "user.name", "T"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "README.md").write_text("# repo\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=path, check=True)
    return str(path)


def _global() -> RateLimitRegistry:
    return RateLimitRegistry(GLOBAL_LIMIT_KEY, connection=get_redis())


def _status(task_id: int) -> str:
    job = Job.fetch(service.current_job_id(task_id), connection=get_redis())
    return job.get_status()


def _dequeue(priority: str = "default") -> tuple[Job, Queue]:
    """What a worker does: pop the next job of a queue (onto its intermediate list)."""
    queue = get_queue(priority)
    result = Queue.dequeue_any([queue], None, connection=get_redis())
    assert result is not None, "nothing to dequeue"
    return result


def test_a_repository_job_waits_at_the_global_gate_and_is_released_into_its_queue(
    env, tmp_path, monkeypatch
):
    _limits(monkeypatch, global_limit=1, repo_limit=1)
    repo_a, repo_b = _repo(tmp_path / "a"), _repo(tmp_path / "b")
    first = service.create_task(TaskCreate(prompt="a [scenario:text]", repo=repo_a))
    second = service.create_task(TaskCreate(prompt="b [scenario:text]", repo=repo_b))
    # Each holds its own repository's slot: both are on the queue.
    assert get_queue("default").count == 2

    job, queue = _dequeue()
    assert job.id == job_id_for(first.id, 1) and pass_global_gate(job, queue)
    other, queue = _dequeue()
    assert not pass_global_gate(other, queue)  # the global slot is taken: held back

    redis = get_redis()
    assert _status(second.id) == "rate_limited"
    assert _global().get_rate_limited_job_ids() == [other.id]
    assert (
        RateLimitRegistry(other.rate_limit_key, connection=get_redis()).get_allowed_job_count() == 0
    )
    assert redis.lpos(queue.intermediate_queue_key, other.id) is None  # off the worker's list
    assert job_is_placed(other.id)  # the reconciler sees it waiting, does not re-enqueue it

    job.set_status("finished")  # the first run ends: its global slot goes to the waiter
    assert release_global_gate(job) == [other.id]
    assert _status(second.id) == "queued" and get_queue("default").job_ids == [other.id]
    again, queue = _dequeue()
    assert again.id == other.id and pass_global_gate(again, queue)  # it holds the slot now
    assert _global().get_allowed_job_ids() == [other.id]


def test_a_job_waits_holding_no_slot_and_cancels_give_slots_back_at_once(
    env, tmp_path, monkeypatch
):
    _limits(monkeypatch, global_limit=1, repo_limit=1)
    repo_a, repo_b = _repo(tmp_path / "a"), _repo(tmp_path / "b")
    service.create_task(TaskCreate(prompt="a [scenario:text]", repo=repo_a))
    second = service.create_task(TaskCreate(prompt="b [scenario:text]", repo=repo_b))
    third = service.create_task(TaskCreate(prompt="c [scenario:text]", repo=repo_b))
    assert _status(third.id) == "rate_limited"  # behind `second` in repository b
    job, queue = _dequeue()
    assert pass_global_gate(job, queue)
    other, queue = _dequeue()
    assert not pass_global_gate(other, queue)

    # Waiting for a global slot, `second` gave its repository slot to the next in line: a
    # waiting job holds nothing (RQ's maintenance would take it back from a rate_limited job).
    repo_b_limit = RateLimitRegistry(other.rate_limit_key, connection=get_redis())
    assert repo_b_limit.get_allowed_job_ids() == [job_id_for(third.id, 1)]
    assert _status(third.id) == "queued"
    held, queue = _dequeue()
    assert not pass_global_gate(held, queue)  # the global limit is still full
    assert repo_b_limit.get_allowed_job_ids() == []
    assert _global().get_rate_limited_job_ids() == [other.id, held.id]

    job.set_status("finished")
    release_global_gate(job)  # `second` is released onto its queue with the global slot
    assert _global().get_allowed_job_ids() == [other.id]

    service.cancel_task(second.id)  # its slot comes back at once, not at the next maintenance
    assert _global().get_allowed_job_ids() == [held.id] and _status(third.id) == "queued"
    service.cancel_task(third.id)
    assert _global().get_allowed_job_count() == 0
    assert _global().get_rate_limited_job_count() == 0
    assert service.queue_overview("default").rate_limited == 0


def test_a_limit_rq_forgot_while_idle_still_lets_its_waiters_through(env, tmp_path, monkeypatch):
    """RQ's maintenance deletes the config of a limit with no job in it; the gate registers the
    limit again before it uses it, or a waiter there would never be promoted."""
    from rq.rate_limit import release_slot

    _limits(monkeypatch, global_limit=2, repo_limit=1)
    repos = {name: _repo(tmp_path / name) for name in "abc"}
    for name in "ab":
        service.create_task(TaskCreate(prompt=f"{name} [scenario:text]", repo=repos[name]))
    c1, c2 = (
        service.create_task(TaskCreate(prompt=f"c{i} [scenario:text]", repo=repos["c"]))
        for i in (1, 2)
    )
    first, queue = _dequeue()
    second, queue = _dequeue()
    assert pass_global_gate(first, queue) and pass_global_gate(second, queue)
    for _ in range(2):  # c1, then c2 (promoted when c1 gave its slot back): no global slot
        job, queue = _dequeue()
        assert not pass_global_gate(job, queue)
    repo_c = RateLimitRegistry(job.rate_limit_key, connection=get_redis())
    repo_c.cleanup()  # the maintenance: repository c holds and waits for nothing now
    assert not get_redis().exists(repo_c.config_key)

    for done in (first, second):  # a1 ends: c1 runs; b1 ends: c2 finds repository c taken
        done.set_status("finished")
        release_global_gate(done)
        job, queue = _dequeue()
        assert pass_global_gate(job, queue) == (done is first)
    assert _status(c2.id) == "rate_limited"
    running = Job.fetch(job_id_for(c1.id, 1), connection=get_redis())
    running.set_status("finished")
    release_slot(running)  # what RQ's worker does when c1 ends

    assert _status(c2.id) == "queued"


@pytest.mark.parametrize("with_repo", [False, True], ids=["global", "repository"])
def test_a_job_released_into_a_paused_queue_gives_its_slot_back(
    env, tmp_path, monkeypatch, with_repo
):
    _limits(monkeypatch, global_limit=1, repo_limit=1)
    repo = _repo(tmp_path / "a") if with_repo else None
    service.pause_queue("low")
    parked = service.create_task(TaskCreate(prompt="p [scenario:text]", priority="low", repo=repo))
    waiting = service.create_task(TaskCreate(prompt="w [scenario:text]", repo=repo))
    assert _status(waiting.id) == "rate_limited"  # RQ released `parked` into its paused queue

    assert settle_paused_queues() == 1  # the worker pool does this every second

    assert _status(waiting.id) == "queued" and get_queue("default").count == 1
    assert _status(parked.id) == "rate_limited" and get_queue("low").count == 0
    assert job_is_placed(job_id_for(parked.id, 1))
    assert settle_paused_queues() == 0  # parked jobs are not waiters: no ping-pong

    service.resume_queue("low")  # back among its limit's waiters, behind the one that runs
    assert _status(parked.id) == "rate_limited"
    assert service.queue_overview("low").rate_limited == 1
    service.cancel_task(waiting.id)  # its slot frees: the parked one is next
    assert _status(parked.id) == "queued" and get_queue("low").count == 1


def test_a_parked_job_cancelled_stays_cancelled_on_resume(env, monkeypatch):
    _limits(monkeypatch, global_limit=1, repo_limit=0)
    service.pause_queue("low")
    parked = service.create_task(TaskCreate(prompt="p [scenario:text]", priority="low"))
    settle_paused_queues()
    service.cancel_task(parked.id)
    service.resume_queue("low")
    assert _status(parked.id) == "canceled"
    assert get_queue("low").count == 0 and _global().get_rate_limited_job_count() == 0


def _spans(tasks) -> list[tuple]:
    return [
        (aware(a.started_at), aware(a.finished_at), task.repo)
        for task in tasks
        for a in service.list_attempts(task.id)
    ]


def _most_at_once(spans, same_repo: bool) -> int:
    most = 0
    for start, _, repo in spans:  # running at `start`: started at or before it, not yet ended
        running = [s for s in spans if s[0] <= start < s[1] and (not same_repo or s[2] == repo)]
        most = max(most, len(running))
    return most


def test_global_and_repository_limits_hold_together_on_real_workers(env, tmp_path, monkeypatch):
    _limits(monkeypatch, global_limit=2, repo_limit=1)
    values = {**env, "TASKDECK_GLOBAL_CONCURRENCY": "2", "TASKDECK_REPO_CONCURRENCY": "1"}
    repos = [_repo(tmp_path / "a"), _repo(tmp_path / "b")]
    pool = WorkerPool(values, workers=3, log=tmp_path / "pool.log").start()
    try:
        tasks = [
            service.create_task(
                TaskCreate(prompt=f"t{i} [scenario:slow] [delay:0.05]", repo=repos[i % 2])
            )
            for i in range(4)
        ] + [
            service.create_task(TaskCreate(prompt=f"n{i} [scenario:slow] [delay:0.05]"))
            for i in range(2)
        ]
        for task in tasks:
            assert wait_for_status(task.id, ("succeeded",), timeout=180).status == "succeeded"
    finally:
        pool.stop()
    spans = _spans([service.get_task(t.id) for t in tasks])
    assert len(spans) == len(tasks)  # one attempt each: nothing ran twice
    assert _most_at_once(spans, same_repo=False) == 2, spans  # 3 workers, global limit 2
    repo_spans = [s for s in spans if s[2]]
    assert _most_at_once(repo_spans, same_repo=True) == 1, spans
    assert _global().get_allowed_job_count() == 0  # every slot given back
    assert "waits for a global slot" in (tmp_path / "pool.log").read_text()  # the gate worked


def test_many_tasks_over_three_repositories_all_run_within_both_limits(env, tmp_path, monkeypatch):
    _limits(monkeypatch, global_limit=2, repo_limit=1)
    values = {**env, "TASKDECK_GLOBAL_CONCURRENCY": "2", "TASKDECK_REPO_CONCURRENCY": "1"}
    repos = [_repo(tmp_path / name) for name in "abc"]
    pool = WorkerPool(values, workers=3, log=tmp_path / "pool.log").start()
    try:
        tasks = [
            service.create_task(
                TaskCreate(prompt=f"t{i} [scenario:slow] [delay:0.05]", repo=repos[i % 3])
            )
            for i in range(9)
        ]
        for task in tasks:
            assert wait_for_status(task.id, ("succeeded",), timeout=120).status == "succeeded"
    finally:
        pool.stop()
    spans = _spans([service.get_task(t.id) for t in tasks])
    assert len(spans) == len(tasks)
    assert _most_at_once(spans, same_repo=False) <= 2, spans
    assert _most_at_once(spans, same_repo=True) == 1, spans


def test_a_killed_worker_gives_back_its_global_slot(env, tmp_path, monkeypatch):
    _limits(monkeypatch, global_limit=1, repo_limit=1)
    values = {**env, "TASKDECK_GLOBAL_CONCURRENCY": "1", "TASKDECK_REPO_CONCURRENCY": "1"}
    repo_a, repo_b = _repo(tmp_path / "a"), _repo(tmp_path / "b")
    pool = WorkerPool(values, workers=2, log=tmp_path / "pool.log").start()
    try:
        first = service.create_task(
            TaskCreate(prompt="a [scenario:slow] [delay:0.5]", repo=repo_a, max_attempts=2)
        )
        wait_for_status(first.id, ("running",), timeout=60)
        second = service.create_task(TaskCreate(prompt="b [scenario:text]", repo=repo_b))
        wait_until(lambda: _status(second.id) == "rate_limited", 30, message="b held back")
        worker = wait_until(
            lambda: next(
                (w for w in Worker.all(connection=get_redis()) if w.get_current_job_id()), None
            ),
            30,
            message="the busy worker",
        )
        os.kill(worker.pid, signal.SIGKILL)

        # The abandoned run's slot is freed by RQ's maintenance: both tasks end well.
        assert wait_for_status(second.id, ("succeeded",), timeout=90).status == "succeeded"
        assert wait_for_status(first.id, ("succeeded",), timeout=120).status == "succeeded"
    finally:
        pool.stop()
    reasons = [a.reason for a in service.list_attempts(first.id)]
    assert reasons[0] == "worker lost", reasons
    spans = _spans([service.get_task(first.id), service.get_task(second.id)])
    assert _most_at_once(spans, same_repo=False) == 1, spans


def test_a_paused_queue_holds_no_slot_on_real_workers(env, tmp_path, monkeypatch):
    """RQ releases a low task into the paused low queue (the only global slot); the pool parks it
    within a second, so the default queue's task runs; on resume the low one runs too."""
    _limits(monkeypatch, global_limit=1, repo_limit=0)
    values = {**env, "TASKDECK_GLOBAL_CONCURRENCY": "1", "TASKDECK_REPO_CONCURRENCY": "0"}
    service.pause_queue("low")
    parked = service.create_task(TaskCreate(prompt="later [scenario:text]", priority="low"))
    waiting = service.create_task(TaskCreate(prompt="now [scenario:text]"))
    assert _status(waiting.id) == "rate_limited"
    pool = WorkerPool(values, workers=2, log=tmp_path / "pool.log").start()
    try:
        assert wait_for_status(waiting.id, ("succeeded",), timeout=90).status == "succeeded"
        assert service.get_task(parked.id).status == "queued"
        service.resume_queue("low")
        assert wait_for_status(parked.id, ("succeeded",), timeout=90).status == "succeeded"
    finally:
        pool.stop()
