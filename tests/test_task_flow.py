"""The walking skeleton end to end: submit -> RQ worker -> real claude CLI -> events -> result."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from rq import Queue

from app import live, service
from app.queue import all_queues, get_redis
from app.schemas import TaskCreate
from tests.conftest import WorkerPool, wait_for_status


def _queued_jobs() -> int:
    return sum(q.count for q in all_queues(get_redis()))


def test_a_task_writes_a_file_and_keeps_its_result(env, worker_pool, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    task = service.create_task(
        TaskCreate(prompt="Write hello.txt [scenario:write]", cwd=str(project), max_turns=5)
    )
    assert task.status == "queued"

    done = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)

    assert done.status == "succeeded", done.status_reason
    assert (project / "hello.txt").read_text() == "hello from taskdeck\n"
    assert "wrote hello.txt" in (done.result_text or "")
    assert done.cost_usd > 0
    assert done.input_tokens > 0 and done.output_tokens > 0
    assert done.num_turns >= 2
    assert done.duration_ms > 0
    assert done.session_id

    kinds = [e.type for e in service.list_events(task.id)]
    for kind in ("status", "init", "progress", "text", "tool_use", "tool_result", "result"):
        assert kind in kinds, kinds
    statuses = [e.data["status"] for e in service.list_events(task.id) if e.type == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    tool_use = next(e for e in service.list_events(task.id) if e.type == "tool_use")
    assert tool_use.data["name"] == "Write"
    # The live stream carries the same events, in the same order.
    streamed = [event.type for _, event in live.read(task.id)]
    assert [k for k in streamed if k != "text_delta"] == kinds

    attempts = service.list_attempts(task.id)
    assert [(a.number, a.status) for a in attempts] == [(1, "succeeded")]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"prompt": "   "}, "prompt", "empty"),
        ({"prompt": "hi", "cwd": "/no/such/dir"}, "cwd", "does not exist"),
        ({"prompt": "hi", "max_turns": 0}, "max_turns", "between 1 and"),
        ({"prompt": "hi", "max_turns": 100000}, "max_turns", "between 1 and"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(env, fields, field, message):
    with pytest.raises(ValidationError) as info:
        service.create_task(TaskCreate(**fields))
    error = info.value.errors()[0]
    assert error["loc"] == (field,)
    assert message in error["msg"]
    assert service.list_tasks().items == []
    assert _queued_jobs() == 0


def test_missing_claude_binary_fails_the_task_and_the_worker_lives_on(env, tmp_path):
    broken = WorkerPool(
        {**env, "TASKDECK_CLAUDE_PATH": "/nonexistent/claude"},
        workers=1,
        log=tmp_path / "broken.log",
    ).start()
    try:
        first = service.create_task(TaskCreate(prompt="hi [scenario:text]", max_attempts=1))
        failed = wait_for_status(first.id, ("succeeded", "failed"), timeout=60)
        assert failed.status == "failed"
        assert "/nonexistent/claude" in (failed.status_reason or "")
        errors = [e for e in service.list_events(first.id) if e.type == "error"]
        assert errors and errors[0].data["kind"] in ("cli_not_found", "cli_failed")
        second = service.create_task(TaskCreate(prompt="again [scenario:text]", max_attempts=1))
        assert wait_for_status(second.id, ("succeeded", "failed"), timeout=60).status == "failed"
        assert broken.process.poll() is None  # the pool still runs
    finally:
        broken.stop()


def test_queue_names_follow_priorities(env):
    task = service.create_task(TaskCreate(prompt="urgent", priority="high"))
    assert Queue("taskdeck-high", connection=get_redis()).count == 1
    assert service.get_task(task.id).priority == "high"
