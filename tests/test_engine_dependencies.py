"""Dependencies: a task waits, queued, until the tasks it depends on succeeded; if one of them
fails or is cancelled it ends too (failed, with the reason), never queued forever."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app import service
from app.db import aware
from app.schemas import TaskCreate
from tests.conftest import wait_for_status


def test_a_task_starts_after_its_dependency_succeeded(env, worker_pool):
    service.pause_queue("default")
    first = service.create_task(TaskCreate(prompt="first [scenario:text]"))
    second = service.create_task(TaskCreate(prompt="second [scenario:text]", depends_on=[first.id]))
    assert second.status == "queued"
    assert second.status_reason == f"waiting for #{first.id}"
    service.resume_queue("default")

    done = wait_for_status(second.id, ("succeeded", "failed"), timeout=90)

    assert done.status == "succeeded", done.status_reason
    first_done = service.get_task(first.id)
    assert aware(done.started_at) >= aware(first_done.finished_at)
    assert service.dependencies_of(second.id) == [(first.id, "succeeded")]


def test_a_failed_dependency_fails_its_dependents_in_a_chain(env, worker_pool):
    root = service.create_task(TaskCreate(prompt="root [scenario:error_400]"))
    middle = service.create_task(TaskCreate(prompt="mid [scenario:text]", depends_on=[root.id]))
    leaf = service.create_task(TaskCreate(prompt="leaf [scenario:text]", depends_on=[middle.id]))

    assert wait_for_status(root.id, ("failed",), timeout=60).status == "failed"
    middle_done = wait_for_status(middle.id, ("failed", "succeeded"), timeout=30)
    leaf_done = wait_for_status(leaf.id, ("failed", "succeeded"), timeout=30)

    assert middle_done.status_reason == f"dependency #{root.id} failed: not run"
    assert leaf_done.status_reason == f"dependency #{middle.id} failed: not run"
    assert service.list_attempts(middle.id) == [] and service.list_attempts(leaf.id) == []


def test_cancelling_a_dependency_ends_the_waiting_task(env):
    first = service.create_task(TaskCreate(prompt="never runs"))
    waiting = service.create_task(TaskCreate(prompt="waits", depends_on=[first.id]))

    service.cancel_task(first.id)

    done = service.get_task(waiting.id)
    assert done.status == "failed"
    assert done.status_reason == f"dependency #{first.id} cancelled: not run"


def test_retrying_a_dependent_after_its_dependency_was_retried_waits_again(env):
    first = service.create_task(TaskCreate(prompt="first"))
    waiting = service.create_task(TaskCreate(prompt="waits", depends_on=[first.id]))
    service.cancel_task(first.id)
    service.retry_task(first.id)

    again = service.retry_task(waiting.id)

    assert again.status == "queued"
    assert again.status_reason == f"waiting for #{first.id}"


@pytest.mark.parametrize(("ids", "message"), [([999], "does not exist"), ([], None)])
def test_dependencies_must_exist(env, ids, message):
    if message is None:
        assert service.create_task(TaskCreate(prompt="free", depends_on=ids)).status == "queued"
        return
    with pytest.raises(ValidationError) as info:
        service.create_task(TaskCreate(prompt="orphan", depends_on=ids))
    error = info.value.errors()[0]
    assert error["loc"] == ("depends_on",) and message in error["msg"]
    assert service.list_tasks().items == []


def test_a_dependency_that_already_failed_is_refused(env):
    first = service.create_task(TaskCreate(prompt="first"))
    service.cancel_task(first.id)
    with pytest.raises(ValidationError) as info:
        service.create_task(TaskCreate(prompt="late", depends_on=[first.id]))
    assert "cancelled" in info.value.errors()[0]["msg"]
