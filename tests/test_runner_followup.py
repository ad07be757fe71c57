"""Follow-ups: a finished task continues its Claude session (--resume) as a new attempt."""

from __future__ import annotations

from app import service
from app.schemas import FollowUpCreate, TaskCreate
from tests.conftest import wait_for_status


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
