"""How the API writes, against the real Redis and SQLite: a new task's `queued` event is stored
with the task (one commit) and is the first entry of its stream under the same id, even over a
stream an earlier task left under that id; on SQLite the API's writes take turns in a small
lane of threads instead of making SQLite's busy handler sleep."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from app import live, service
from app.queue import get_redis
from app.schemas import TaskCreate
from tests.conftest import TEST_DB

pytest_plugins = ["tests.api_support"]


def test_a_new_tasks_queued_event_is_stored_and_first_in_its_stream(env):
    task = service.create_task(TaskCreate(prompt="first event"))
    stored = service.list_events(task.id)
    streamed = live.read(task.id)
    assert [(e.type, e.data["status"]) for e in stored] == [("status", "queued")]
    assert [sid for sid, _ in streamed] == [stored[0].stream_id]
    assert streamed[0][1].status == "queued"
    assert service.backfill_events(task.id) == 0  # the stream holds nothing the database lacks


def test_a_stream_left_under_a_new_tasks_id_is_dropped(env):
    stale_id = service.create_task(TaskCreate(prompt="the one before")).id + 1
    get_redis().xadd(live.task_stream(stale_id), {"e": "{}"}, id="99999999999999-0")
    task = service.create_task(TaskCreate(prompt="takes the id"))
    assert task.id == stale_id
    streamed = live.read(task.id)
    assert len(streamed) == 1 and streamed[0][1].status == "queued"
    assert [e.stream_id for e in service.list_events(task.id)] == [streamed[0][0]]


def test_a_created_task_reads_back_as_it_was_answered(api, accounts):
    headers = accounts["member"].headers
    body = {"prompt": "Fix the bug\n\nin detail", "repo": None, "priority": "high"}
    created = api.post("/api/v1/tasks", json=body, headers=headers)
    assert created.status_code == 201
    read = api.get(f"/api/v1/tasks/{created.json()['id']}", headers=headers)
    assert created.json() == read.json()
    assert read.json()["title"] == "Fix the bug" and read.json()["status"] == "queued"


def test_a_create_redis_refuses_leaves_nothing_behind(api, accounts, monkeypatch):
    from sqlmodel import func, select

    from app.db import session_scope
    from app.models import Task, TaskEvent
    from app.settings import get_settings
    from tests.conftest import free_port

    monkeypatch.setenv("TASKDECK_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    refused = api.post(
        "/api/v1/tasks", json={"prompt": "no queue"}, headers=accounts["member"].headers
    )
    assert refused.status_code == 503
    assert "queue is unavailable" in refused.json()["detail"]
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Task)).one() == 0
        assert session.exec(select(func.count()).select_from(TaskEvent)).one() == 0


@pytest.mark.skipif(TEST_DB != "sqlite", reason="other databases use the whole thread pool")
def test_api_writes_on_sqlite_take_turns(env, accounts, monkeypatch):
    from app.api import create_api
    from app.api.deps import SQLITE_WRITE_THREADS

    running, most = 0, 0
    lock = threading.Lock()
    real_create = service.create_task

    def counted_create(data):  # noqa: ANN001, ANN202
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return real_create(data)

    monkeypatch.setattr(service, "create_task", counted_create)

    async def submit_many() -> list[int]:
        transport = httpx.ASGITransport(app=create_api())
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=accounts["member"].headers
        ) as client:
            answers = await asyncio.gather(
                *(client.post("/api/v1/tasks", json={"prompt": f"p{n}"}) for n in range(12))
            )
        return [a.status_code for a in answers]

    assert asyncio.run(submit_many()) == [201] * 12
    assert most == SQLITE_WRITE_THREADS
