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


# --- time zones: a cron read on a zone's wall clock, DST included -------------------------------


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _runs(cron: str, zone: str, after: str, count: int) -> list[str]:
    out, moment = [], _utc(after)
    for _ in range(count):
        moment = service.next_run_after(cron, None, moment, timezone=zone)
        out.append(moment.strftime("%m-%d %H:%M"))
    return out


def test_a_cron_in_a_time_zone_keeps_its_wall_clock_time_across_dst():
    # 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer (clocks forward on 29 March).
    assert _runs("0 9 * * *", "Europe/Paris", "2026-03-27 12:00", 4) == [
        "03-28 08:00",
        "03-29 07:00",
        "03-30 07:00",
        "03-31 07:00",
    ]
    # New York moves on other days (8 March): the same cron there follows its own clock.
    assert _runs("0 9 * * *", "America/New_York", "2026-03-06 20:00", 3) == [
        "03-07 14:00",
        "03-08 13:00",
        "03-09 13:00",
    ]
    assert _runs("0 9 * * *", "UTC", "2026-03-27 12:00", 2) == ["03-28 09:00", "03-29 09:00"]


def test_a_skipped_time_fires_when_the_clocks_jump_and_a_repeated_one_fires_once():
    # 02:30 does not exist in Paris on 29 March: it fires at 03:00 CEST (01:00 UTC).
    assert _runs("30 2 * * *", "Europe/Paris", "2026-03-28 12:00", 2) == [
        "03-29 01:00",
        "03-30 00:30",
    ]
    # 02:30 happens twice on 25 October: a daily job runs at the first one only ...
    assert _runs("30 2 * * *", "Europe/Paris", "2026-10-24 12:00", 2) == [
        "10-25 00:30",
        "10-26 01:30",
    ]
    # ... while an hourly one runs every real hour, both 02:00 included.
    assert _runs("0 * * * *", "Europe/Paris", "2026-10-24 23:30", 4) == [
        "10-25 00:00",
        "10-25 01:00",
        "10-25 02:00",
        "10-25 03:00",
    ]


def test_a_schedule_in_a_time_zone_fires_and_moves_on_in_that_zone(env):
    schedule = service.create_schedule(
        ScheduleCreate(
            name="tokyo", task=TaskCreate(prompt="report"), cron="0 9 * * *", timezone="Asia/Tokyo"
        )
    )
    assert schedule.timezone == "Asia/Tokyo"
    local = schedule.next_run_local
    assert (local.hour, local.minute, local.utcoffset()) == (9, 0, timedelta(hours=9))
    assert aware(schedule.next_run_at) == local  # the same instant, 00:00 UTC
    assert aware(schedule.next_run_at).hour == 0

    _make_due(schedule.id)
    [task_id] = fire_due_schedules()
    after = service.get_schedule(schedule.id)
    assert after.last_task_id == task_id and after.next_run_local.hour == 9
    assert aware(after.next_run_at) > datetime.now(UTC)

    moved = service.update_schedule(schedule.id, ScheduleUpdate(timezone="Europe/London"))
    assert moved.timezone == "Europe/London" and moved.next_run_local.hour == 9
    assert aware(moved.next_run_at).hour in (8, 9)  # 09:00 BST or GMT


def test_a_time_without_an_offset_is_read_in_the_schedule_zone(env):
    schedule = service.create_schedule(
        ScheduleCreate(
            name="once",
            task=TaskCreate(prompt="once"),
            run_at="2030-01-01T09:00:00",
            timezone="Asia/Tokyo",
        )
    )
    assert aware(schedule.next_run_at) == _utc("2030-01-01 00:00")
    assert schedule.next_run_local.isoformat() == "2030-01-01T09:00:00+09:00"
    edited = service.update_schedule(schedule.id, ScheduleUpdate(run_at=datetime(2030, 6, 1, 9, 0)))
    assert aware(edited.next_run_at) == _utc("2030-06-01 00:00")  # still Tokyo's 09:00
    offset = service.create_schedule(
        ScheduleCreate(
            name="utc offset",
            task=TaskCreate(prompt="x"),
            run_at="2030-01-01T09:00:00Z",
            timezone="Asia/Tokyo",
        )
    )
    assert aware(offset.next_run_at) == _utc("2030-01-01 09:00")  # an explicit offset wins


@pytest.mark.parametrize("zone", ["Mars/Olympus", "localtime", "+02:00", "europe/paris", ""])
def test_an_unknown_time_zone_is_refused_naming_the_field(zone):
    with pytest.raises(ValidationError) as info:
        ScheduleCreate(name="x", task=TaskCreate(prompt="x"), cron="0 3 * * *", timezone=zone)
    error = info.value.errors()[0]
    assert error["loc"] == ("timezone",) and "IANA time zone" in error["msg"]
    with pytest.raises(ValidationError):
        ScheduleUpdate(timezone=zone)
