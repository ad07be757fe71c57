"""Schedules: rows with a time or a cron expression, editable and pausable; each due run fires
exactly once even when several worker hosts tick at the same moment."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import update

from app import service
from app.db import aware, session_scope
from app.models import Schedule
from app.schemas import ScheduleCreate, ScheduleUpdate, TaskCreate
from tests.conftest import wait_for_status, wait_until
from worker.scheduler import fire_due_schedules


def _make_due(schedule_id: int) -> None:
    with session_scope() as session:
        session.exec(
            update(Schedule)
            .where(Schedule.id == schedule_id)
            .values(next_run_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_a_one_off_schedule_fires_once_through_the_worker_pool(env, worker_pool):
    when = datetime.now(UTC) + timedelta(seconds=1)
    schedule = service.create_schedule(
        ScheduleCreate(name="soon", task=TaskCreate(prompt="tick [scenario:text]"), run_at=when)
    )
    assert aware(schedule.next_run_at) == when

    fired = wait_until(
        lambda: service.get_schedule(schedule.id).last_task_id, 30, message="the schedule to fire"
    )
    done = wait_for_status(fired, ("succeeded", "failed"), timeout=60)

    assert done.status == "succeeded", done.status_reason
    after = service.get_schedule(schedule.id)
    assert (after.runs_count, after.next_run_at, after.enabled) == (1, None, False)
    assert fire_due_schedules() == []


def test_a_cron_schedule_moves_to_its_next_time(env):
    schedule = service.create_schedule(
        ScheduleCreate(name="hourly", task=TaskCreate(prompt="report"), cron="0 * * * *")
    )
    nxt = aware(schedule.next_run_at)
    assert nxt.minute == 0 and nxt > datetime.now(UTC)
    _make_due(schedule.id)

    [task_id] = fire_due_schedules()

    after = service.get_schedule(schedule.id)
    assert after.runs_count == 1 and after.last_task_id == task_id and after.enabled
    assert aware(after.next_run_at) > datetime.now(UTC) and aware(after.next_run_at).minute == 0
    assert service.get_task(task_id).prompt == "report"
    assert fire_due_schedules() == []


def _fire_in_another_process(url: str, barrier, out) -> None:  # noqa: ANN001
    import os

    from app.settings import get_settings

    os.environ["TASKDECK_DATABASE_URL"] = url
    get_settings.cache_clear()
    barrier.wait()
    out.put(fire_due_schedules())


def test_several_hosts_ticking_at_once_fire_a_run_exactly_once(env):
    schedule = service.create_schedule(
        ScheduleCreate(name="race", task=TaskCreate(prompt="once"), cron="*/5 * * * *")
    )
    _make_due(schedule.id)
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(4), context.Queue()
    hosts = [
        context.Process(
            target=_fire_in_another_process, args=(env["TASKDECK_DATABASE_URL"], barrier, out)
        )
        for _ in range(4)
    ]
    for host in hosts:
        host.start()
    fired = [out.get(timeout=60) for _ in hosts]
    for host in hosts:
        host.join(30)

    assert sorted(len(f) for f in fired) == [0, 0, 0, 1]
    assert service.get_schedule(schedule.id).runs_count == 1
    assert len(service.list_tasks().items) == 1


def test_a_paused_schedule_does_not_fire_and_edits_recompute_the_next_run(env):
    schedule = service.create_schedule(
        ScheduleCreate(name="nightly", task=TaskCreate(prompt="night"), cron="0 3 * * *")
    )
    _make_due(schedule.id)
    service.pause_schedule(schedule.id)
    assert fire_due_schedules() == []

    edited = service.update_schedule(
        schedule.id, ScheduleUpdate(cron="30 4 * * *", task=TaskCreate(prompt="later"))
    )
    assert not edited.enabled
    assert (aware(edited.next_run_at).hour, aware(edited.next_run_at).minute) == (4, 30)
    resumed = service.resume_schedule(schedule.id)
    assert resumed.enabled and resumed.template["prompt"] == "later"
    assert [s.id for s in service.list_schedules()] == [schedule.id]
    service.delete_schedule(schedule.id)
    with pytest.raises(service.ScheduleNotFound):
        service.get_schedule(schedule.id)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"cron": "every day"}, "cron", "not a cron expression"),
        ({"cron": "0 3 * * *", "run_at": "2030-01-01T00:00:00Z"}, None, "not both"),
        ({}, None, "either run_at"),
    ],
)
def test_bad_schedules_are_refused(env, fields, field, message):
    with pytest.raises(ValidationError) as info:
        ScheduleCreate(name="bad", task=TaskCreate(prompt="x"), **fields)
    error = info.value.errors()[0]
    if field:
        assert error["loc"] == (field,)
    assert message in error["msg"]


def test_a_one_off_that_fired_can_be_given_a_new_time(env):
    later = datetime.now(UTC) + timedelta(hours=1)
    schedule = service.create_schedule(
        ScheduleCreate(name="once", task=TaskCreate(prompt="once"), run_at=later)
    )
    _make_due(schedule.id)
    [first] = fire_due_schedules()
    assert service.get_schedule(schedule.id).next_run_at is None

    again = datetime.now(UTC) + timedelta(hours=2)
    edited = service.update_schedule(schedule.id, ScheduleUpdate(run_at=again, enabled=True))
    assert edited.enabled and aware(edited.next_run_at) == again
    _make_due(schedule.id)
    [second] = fire_due_schedules()

    assert second != first
    assert service.get_schedule(schedule.id).runs_count == 2
