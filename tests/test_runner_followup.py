"""Follow-ups: a finished task continues its Claude session (--resume) as a new attempt, and
the task counts the cost and tokens of both."""

from __future__ import annotations

import pytest

from app import service
from app.schemas import FollowUpCreate, TaskCreate
from tests.conftest import wait_for_status
from worker.usage import estimate_cost

TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


def test_a_follow_up_continues_the_same_session_as_attempt_2(env, worker_pool, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    task = service.create_task(
        TaskCreate(prompt="Write it [scenario:write]", cwd=str(project), max_turns=5)
    )
    first = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)
    assert first.status == "succeeded", first.status_reason
    session = first.session_id
    assert session

    service.follow_up(task.id, FollowUpCreate(prompt="Now say hi [scenario:text]"))
    second = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)
    assert second.status == "succeeded", second.status_reason
    assert second.session_id == session
    assert second.result_text == "Hello from the scripted model."

    attempts = service.list_attempts(task.id)
    assert [(a.number, a.kind, a.status) for a in attempts] == [
        (1, "run", "succeeded"),
        (2, "follow_up", "succeeded"),
    ]
    assert [a.session_id for a in attempts] == [session, session]

    events = service.list_events(task.id)
    prompts = [(e.attempt, e.data["text"], e.data["resume"]) for e in events if e.type == "prompt"]
    assert prompts == [
        (1, "Write it [scenario:write]", None),
        (2, "Now say hi [scenario:text]", session),
    ]
    inits = [(e.attempt, e.data["session_id"]) for e in events if e.type == "init"]
    assert inits == [(1, session), (2, session)]
    results = [e.attempt for e in events if e.type == "result"]
    assert results == [1, 2]
    # One conversation, in order: the second prompt comes after the first result.
    order = [(e.type, e.attempt) for e in events if e.type in ("prompt", "result")]
    assert order == [("prompt", 1), ("result", 1), ("prompt", 2), ("result", 2)]


def test_a_task_counts_the_cost_and_tokens_of_its_run_and_follow_up(env, worker_pool, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    task = service.create_task(TaskCreate(prompt="Write it [scenario:write]", cwd=str(project)))
    first = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)
    assert first.status == "succeeded", first.status_reason
    service.follow_up(task.id, FollowUpCreate(prompt="Now say hi [scenario:text]"))
    second = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)
    assert second.status == "succeeded", second.status_reason

    run, follow_up = service.list_attempts(task.id)
    for attempt in (run, follow_up):
        tokens = {name: getattr(attempt, name) for name in TOKENS}
        assert attempt.input_tokens > 0 and attempt.cost_usd > 0
        # Its own cost: its own tokens at list price (the follow-up's CLI reports its session's
        # cost so far, the first run's included).
        assert attempt.cost_usd == pytest.approx(estimate_cost(task.model, tokens), rel=1e-3)
    assert second.cost_usd == pytest.approx(run.cost_usd + follow_up.cost_usd)
    for name in TOKENS:
        assert getattr(second, name) == getattr(run, name) + getattr(follow_up, name), name
    assert second.num_turns == follow_up.num_turns  # turns and duration: the latest run's
    results = [e.data["cost_usd"] for e in service.list_events(task.id) if e.type == "result"]
    assert results == pytest.approx([run.cost_usd, follow_up.cost_usd])
