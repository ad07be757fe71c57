"""/api/v1/tasks through FastAPI's TestClient on create_api(), with the real Redis and SQLite."""

from __future__ import annotations

import json

import pytest

from app import service
from app.queue import all_queues, get_redis
from tests.conftest import wait_for_status

pytest_plugins = ["tests.api_support"]


def _queued_jobs() -> int:
    return sum(q.count for q in all_queues(get_redis()))


def test_submit_list_get_cancel_retry_delete(api, accounts):
    h = accounts["member"].headers
    created = api.post("/api/v1/tasks", json={"prompt": "Say hi", "priority": "high"}, headers=h)
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["status"] == "queued" and task["priority"] == "high" and task["title"] == "Say hi"
    assert _queued_jobs() == 1

    listed = api.get("/api/v1/tasks", headers=h).json()
    assert [t["id"] for t in listed["items"]] == [task["id"]]
    assert "prompt" not in listed["items"][0]  # the list is lean; GET /tasks/{id} has it all
    assert api.get(f"/api/v1/tasks/{task['id']}", headers=h).json()["prompt"] == "Say hi"

    still_queued = api.delete(f"/api/v1/tasks/{task['id']}", headers=h)
    assert still_queued.status_code == 409 and "cancel it first" in still_queued.json()["detail"]

    cancelled = api.post(f"/api/v1/tasks/{task['id']}/cancel", headers=h)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api.post(f"/api/v1/tasks/{task['id']}/cancel", headers=h)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]

    retried = api.post(f"/api/v1/tasks/{task['id']}/retry", headers=h)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    api.post(f"/api/v1/tasks/{task['id']}/cancel", headers=h)

    events = api.get(f"/api/v1/tasks/{task['id']}/events", headers=h).json()
    statuses = [e["data"]["status"] for e in events["items"] if e["type"] == "status"]
    assert statuses == ["queued", "cancelled", "queued", "cancelled"]
    second = api.get(
        f"/api/v1/tasks/{task['id']}/events",
        params={"after": events["items"][1]["stream_id"], "limit": 1},
        headers=h,
    ).json()
    assert [e["data"]["status"] for e in second["items"]] == ["queued"]
    assert second["next_cursor"] == second["items"][0]["stream_id"]

    assert api.delete(f"/api/v1/tasks/{task['id']}", headers=h).status_code == 204
    gone = api.get(f"/api/v1/tasks/{task['id']}", headers=h)
    assert gone.status_code == 404 and gone.json()["detail"] == f"task {task['id']} not found"
    assert service.list_events(task["id"]) == []


def test_list_pages_with_a_cursor_and_filters(api, accounts):
    h = accounts["member"].headers
    ids = [
        api.post("/api/v1/tasks", json={"prompt": f"task {n}"}, headers=h).json()["id"]
        for n in range(5)
    ]
    api.post(f"/api/v1/tasks/{ids[0]}/cancel", headers=h)

    first = api.get("/api/v1/tasks", params={"limit": 2}, headers=h).json()
    assert [t["id"] for t in first["items"]] == ids[:2:-1][:2] == [ids[4], ids[3]]
    second = api.get(
        "/api/v1/tasks", params={"limit": 2, "cursor": first["next_cursor"]}, headers=h
    ).json()
    assert [t["id"] for t in second["items"]] == [ids[2], ids[1]]
    third = api.get(
        "/api/v1/tasks", params={"limit": 2, "cursor": second["next_cursor"]}, headers=h
    ).json()
    assert [t["id"] for t in third["items"]] == [ids[0]] and third["next_cursor"] is None

    cancelled = api.get("/api/v1/tasks", params={"status": "cancelled"}, headers=h).json()
    assert [t["id"] for t in cancelled["items"]] == [ids[0]]
    found = api.get("/api/v1/tasks", params={"q": "task 3"}, headers=h).json()
    assert [t["id"] for t in found["items"]] == [ids[3]]


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"prompt": "   "}, ["body", "prompt"], "the prompt is empty"),
        ({}, ["body", "prompt"], "Field required"),
        ({"prompt": "hi", "max_turns": 0}, ["body", "max_turns"], "between 1 and"),
        ({"prompt": "hi", "max_turns": "many"}, ["body", "max_turns"], "valid integer"),
        ({"prompt": "hi", "cwd": "/no/such/dir"}, ["body", "cwd"], "does not exist"),
        ({"prompt": "hi", "cwd": "~no-such-user0"}, ["body", "cwd"], "home directory"),
        ({"prompt": "hi", "repo": "~no-such-user0/r"}, ["body", "repo"], "home directory"),
        ({"prompt": "hi", "priority": "urgent"}, ["body", "priority"], "'high'"),
        ({"prompt": "hi", "colour": "red"}, ["body", "colour"], "Extra inputs"),
        ({"prompt": "x" * 100_001}, ["body", "prompt"], "too long"),
        ({"prompt": "a\x00b"}, ["body", "prompt"], "NUL character"),
        ({"prompt": "hi", "base_ref": "ma\x00in"}, ["body", "base_ref"], "NUL character"),
    ],
)
def test_invalid_bodies_get_422_naming_the_field_and_nothing_is_stored(
    api, accounts, body, loc, message
):
    response = api.post("/api/v1/tasks", json=body, headers=accounts["member"].headers)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == loc, detail
    assert message in detail[0]["msg"]
    assert "input" not in detail[0]  # submitted values are never echoed back
    assert service.list_tasks().items == [] and _queued_jobs() == 0


def test_malformed_json_and_bad_paths_are_client_errors(api, accounts):
    h = {**accounts["member"].headers, "Content-Type": "application/json"}
    assert api.post("/api/v1/tasks", content=b"{not json", headers=h).status_code == 422
    assert api.get("/api/v1/tasks/abc", headers=h).status_code == 422
    assert api.get(f"/api/v1/tasks/{2**63}", headers=h).status_code == 422
    assert api.get("/api/v1/tasks/1/events", params={"after": "x"}, headers=h).status_code == 422
    assert api.get("/api/v1/tasks", params={"limit": 0}, headers=h).status_code == 422
    assert api.get("/api/v1/tasks", params={"status": "nope"}, headers=h).status_code == 422


def test_a_body_over_the_limit_is_refused_with_413(api, accounts):
    body = json.dumps({"prompt": "y" * 2_000_000}).encode()
    response = api.post(
        "/api/v1/tasks",
        content=body,
        headers={**accounts["member"].headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert service.list_tasks().items == []


def test_bulk_cancel_reports_each_task(api, accounts):
    h = accounts["member"].headers
    first = api.post("/api/v1/tasks", json={"prompt": "one"}, headers=h).json()["id"]
    second = api.post("/api/v1/tasks", json={"prompt": "two"}, headers=h).json()["id"]
    api.post(f"/api/v1/tasks/{second}/cancel", headers=h)
    result = api.post(
        "/api/v1/tasks/bulk",
        json={"action": "cancel", "task_ids": [first, second, 999]},
        headers=h,
    ).json()
    assert result == {
        "done": [first],
        "skipped": {str(second): f"task {second} is already cancelled", "999": "not found"},
    }
    assert service.get_task(first).status == "cancelled"


def test_live_event_stream_follows_a_real_task_to_its_end(api, accounts, worker_pool, tmp_path):
    h = accounts["member"].headers
    project = tmp_path / "project"
    project.mkdir()
    task = api.post(
        "/api/v1/tasks",
        json={"prompt": "Write hello.txt [scenario:write]", "cwd": str(project)},
        headers=h,
    ).json()
    with api.stream("GET", f"/api/v1/tasks/{task['id']}/events/stream", headers=h) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    frames = [f for f in body.split("\n\n") if f.startswith("id:") or "\nid:" in f]
    kinds = [
        line[6:].strip() for f in frames for line in f.splitlines() if line.startswith("event:")
    ]
    for kind in ("status", "init", "tool_use", "tool_result", "result"):
        assert kind in kinds, kinds
    statuses = [
        json.loads(line[5:])["status"]
        for f in frames
        for line in f.splitlines()
        if line.startswith("data:") and '"type":"status"' in line
    ]
    assert statuses == ["queued", "running", "succeeded"]
    done = wait_for_status(task["id"], ("succeeded",))
    assert done.status == "succeeded"

    # Its attempts, each with its own spend; the task's totals are their sums.
    attempts = api.get(f"/api/v1/tasks/{task['id']}/attempts", headers=h)
    assert attempts.status_code == 200, attempts.text
    [attempt] = attempts.json()
    assert (attempt["number"], attempt["kind"], attempt["status"]) == (1, "run", "succeeded")
    assert attempt["cost_usd"] == done.cost_usd > 0
    assert attempt["cache_creation_tokens"] == done.cache_creation_tokens
    unknown = api.get("/api/v1/tasks/999999/attempts", headers=h)
    assert unknown.status_code == 404

    # Resuming after the last seen id gives nothing new and ends at once: the task is over.
    last_id = [line[3:].strip() for line in frames[-1].splitlines() if line.startswith("id:")][0]
    with api.stream(
        "GET",
        f"/api/v1/tasks/{task['id']}/events/stream",
        headers={**h, "Last-Event-ID": last_id},
    ) as response:
        rest = "".join(response.iter_text())
    assert "event:" not in rest
