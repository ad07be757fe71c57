"""Retries: retryable failures come back with exponential backoff up to the task's maximum of
attempts; final failures end at once. Real worker, real claude CLI, scripted demo model."""

from __future__ import annotations

import pytest

from app import service
from app.db import aware
from app.events import ResultEvent
from app.queue import backoff_intervals
from app.schemas import TaskCreate
from tests.conftest import WorkerPool, wait_for_status
from worker.claude_code import RunOutcome
from worker.jobs import cli_env, is_retryable


def _statuses(task_id: int) -> list[str]:
    return [e.data["status"] for e in service.list_events(task_id) if e.type == "status"]


def test_backoff_doubles_up_to_its_cap(env, monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_RETRY_BACKOFF_S", "15")
    monkeypatch.setenv("TASKDECK_RETRY_BACKOFF_MAX_S", "100")
    get_settings.cache_clear()
    assert backoff_intervals(5) == [15, 30, 60, 100, 100]
    assert backoff_intervals(0) == []


def test_the_cli_retries_api_errors_as_configured_unless_the_environment_says(env, monkeypatch):
    from app.settings import get_settings

    assert cli_env() == {}  # the test environment sets CLAUDE_CODE_MAX_RETRIES=0 itself
    monkeypatch.delenv("CLAUDE_CODE_MAX_RETRIES")
    monkeypatch.setenv("TASKDECK_CLI_MAX_RETRIES", "1")
    get_settings.cache_clear()
    assert cli_env() == {"CLAUDE_CODE_MAX_RETRIES": "1"}


def test_overloaded_model_is_retried_with_backoff_then_fails_after_max_attempts(
    env, tmp_path, monkeypatch
):
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_RETRY_BACKOFF_S", "2")  # the intervals are set at enqueue
    get_settings.cache_clear()
    pool = WorkerPool({**env, "TASKDECK_RETRY_BACKOFF_S": "2"}, log=tmp_path / "pool.log").start()
    try:
        task = service.create_task(
            TaskCreate(prompt="overloaded [scenario:error_529]", max_attempts=3)
        )
        done = wait_for_status(task.id, ("succeeded", "failed"), timeout=120)
    finally:
        pool.stop()

    assert done.status == "failed"
    assert "529" in done.status_reason
    attempts = service.list_attempts(task.id)
    assert [(a.number, a.kind, a.status) for a in attempts] == [
        (1, "run", "failed"),
        (2, "retry", "failed"),
        (3, "retry", "failed"),
    ]
    for attempt in attempts:
        assert "529" in attempt.reason
        assert attempt.finished_at is not None and attempt.finished_at >= attempt.started_at
    # Backoff 2 s then 4 s; RQ's scheduler keeps whole seconds, so a retry may come up to 1 s
    # early: >= 1 s before the second attempt, >= 3 s before the third.
    gaps = [
        (aware(b.started_at) - aware(a.finished_at)).total_seconds()
        for a, b in zip(attempts, attempts[1:], strict=False)
    ]
    assert gaps[0] >= 1.0 and gaps[1] >= 3.0 and gaps[1] > gaps[0], gaps
    assert _statuses(task.id) == [
        "queued",
        "running",
        "queued",
        "running",
        "queued",
        "running",
        "failed",
    ]
    # Each attempt has its own events, the error result included.
    for number in (1, 2, 3):
        kinds = [e.type for e in service.list_events(task.id) if e.attempt == number]
        assert "result" in kinds, (number, kinds)


def test_overloaded_once_then_succeeds_on_the_next_attempt(env, worker_pool):
    task = service.create_task(
        TaskCreate(prompt="flaky [scenario:error_529_then_ok]", max_attempts=3)
    )

    done = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)

    assert done.status == "succeeded", done.status_reason
    attempts = service.list_attempts(task.id)
    assert [(a.number, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert "529" in attempts[0].reason
    assert attempts[1].reason is None


def test_bad_request_and_max_turns_are_final_after_one_attempt(env, worker_pool):
    bad = service.create_task(TaskCreate(prompt="bad [scenario:error_400]", max_attempts=3))
    turns = service.create_task(
        TaskCreate(prompt="loop [scenario:max_turns]", max_turns=2, max_attempts=3)
    )

    bad_done = wait_for_status(bad.id, ("succeeded", "failed"), timeout=90)
    turns_done = wait_for_status(turns.id, ("succeeded", "failed"), timeout=90)

    assert bad_done.status == "failed" and "400" in bad_done.status_reason
    assert turns_done.status == "failed" and "max turns" in turns_done.status_reason
    assert [a.status for a in service.list_attempts(bad.id)] == ["failed"]
    assert [a.status for a in service.list_attempts(turns.id)] == ["failed"]


@pytest.mark.parametrize(
    ("fields", "retryable"),
    [
        ({"api_error_status": 529, "text": "API Error: 529 Overloaded"}, True),
        ({"api_error_status": 429, "text": "rate limited"}, True),
        ({"api_error_status": 400, "text": "API Error: 400 bad request"}, False),
        ({"api_error_status": 401, "text": "API Error: 401 invalid key"}, False),
        ({"text": "API Error: Connection refused (ECONNREFUSED)"}, True),
        ({"text": "network:ConnectionError"}, True),
        ({"text": "Request timed out."}, True),
        ({"subtype": "error_max_turns", "text": None}, False),
        ({"subtype": "error_during_execution", "text": "No conversation found"}, False),
        ({"is_error": False, "text": "done"}, False),
    ],
)
def test_which_outcomes_are_retried(fields, retryable):
    result = ResultEvent(**{"is_error": True, "attempt": 1, **fields})
    assert is_retryable(RunOutcome(result=result)) is retryable


def test_an_unreachable_api_is_retried_then_fails(env, tmp_path):
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    pool = WorkerPool({**env, "ANTHROPIC_BASE_URL": dead}, log=tmp_path / "pool.log").start()
    try:
        task = service.create_task(TaskCreate(prompt="unreachable", max_attempts=2))
        done = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)
    finally:
        pool.stop()
    assert done.status == "failed"
    attempts = service.list_attempts(task.id)
    assert [a.status for a in attempts] == ["failed", "failed"]
    assert all("refused" in a.reason.lower() for a in attempts), [a.reason for a in attempts]
