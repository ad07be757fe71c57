"""/api/v1 health, metrics, workers, queues and schedules, in-process on the real Redis + SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.queue import get_redis, paused_queue_names

pytest_plugins = ["tests.api_support"]


def test_liveness_and_readiness_need_no_credential(api):
    assert api.get("/api/v1/health/live").json() == {"status": "ok"}
    ready = api.get("/api/v1/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def test_readiness_is_503_naming_the_part_that_is_down(api, monkeypatch):
    from app.settings import get_settings
    from tests.conftest import free_port

    monkeypatch.setenv("TASKDECK_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    ready = api.get("/api/v1/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"].startswith("down:")
    assert "127.0.0.1" not in ready.text  # no addresses or credentials in the answer


def test_metrics_are_prometheus_text(api, accounts):
    h = accounts["viewer"].headers
    api.post("/api/v1/tasks", json={"prompt": "count me"}, headers=accounts["member"].headers)
    api.get("/api/v1/tasks", headers=h)
    response = api.get("/api/v1/metrics", headers=h)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'taskdeck_tasks{status="queued"} 1.0' in text
    assert 'taskdeck_queue_jobs{queue="taskdeck-default",state="queued"} 1.0' in text
    assert "taskdeck_workers 0.0" in text
    assert 'taskdeck_api_requests_total{method="GET",route="/api/v1/tasks",status="200"}' in text
    assert "taskdeck_api_request_seconds_bucket" in text
    assert accounts["viewer"].token not in text


def test_workers_list_the_live_pool(api, accounts, worker_pool):
    from tests.conftest import wait_until

    h = accounts["viewer"].headers
    workers = wait_until(lambda: api.get("/api/v1/workers", headers=h).json(), 60)
    assert {"name", "state", "queues", "heartbeat_age_s"} <= set(workers[0])
    assert "taskdeck-high" in workers[0]["queues"]


def test_queue_pause_and_resume_are_for_admins(api, accounts):
    member, admin = accounts["member"].headers, accounts["admin"].headers
    queues = api.get("/api/v1/queues", headers=accounts["viewer"].headers).json()
    assert [q["priority"] for q in queues] == ["high", "default", "low"]
    assert api.post("/api/v1/queues/low/pause", headers=member).status_code == 403
    paused = api.post("/api/v1/queues/low/pause", headers=admin)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert "taskdeck-low" in paused_queue_names(get_redis())
    assert api.post("/api/v1/queues/urgent/pause", headers=admin).status_code == 422
    resumed = api.post("/api/v1/queues/low/resume", headers=admin)
    assert resumed.json()["paused"] is False
    assert "taskdeck-low" not in paused_queue_names(get_redis())


def test_schedules_crud(api, accounts):
    member, viewer = accounts["member"].headers, accounts["viewer"].headers
    body = {"name": "nightly", "cron": "0 3 * * *", "task": {"prompt": "tidy up"}}
    assert api.post("/api/v1/schedules", json=body, headers=viewer).status_code == 403
    created = api.post("/api/v1/schedules", json=body, headers=member)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["cron"] == "0 3 * * *" and schedule["next_run_at"]
    assert schedule["timezone"] == "UTC"
    sid = schedule["id"]

    bad = api.post("/api/v1/schedules", json={**body, "cron": "every night"}, headers=member)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "cron"]
    bad_zone = api.post("/api/v1/schedules", json={**body, "timezone": "Mars/Base"}, headers=member)
    assert bad_zone.status_code == 422
    assert bad_zone.json()["detail"][0]["loc"] == ["body", "timezone"]
    zoned = api.post(
        "/api/v1/schedules", json={**body, "timezone": "America/New_York"}, headers=member
    ).json()
    assert zoned["timezone"] == "America/New_York"
    local = datetime.fromisoformat(zoned["next_run_local"])  # 03:00 on New York's clock
    assert (local.hour, local.minute) == (3, 0)
    assert local.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))
    assert local == datetime.fromisoformat(zoned["next_run_at"].replace("Z", "+00:00"))
    assert api.delete(f"/api/v1/schedules/{zoned['id']}", headers=member).status_code == 204
    bad_task = api.post("/api/v1/schedules", json={**body, "task": {"prompt": ""}}, headers=member)
    assert bad_task.status_code == 422
    assert bad_task.json()["detail"][0]["loc"] == ["body", "task", "prompt"]

    assert [s["id"] for s in api.get("/api/v1/schedules", headers=viewer).json()] == [sid]
    renamed = api.patch(f"/api/v1/schedules/{sid}", json={"name": "nightly tidy"}, headers=member)
    assert renamed.json()["name"] == "nightly tidy"
    paused = api.post(f"/api/v1/schedules/{sid}/pause", headers=member).json()
    assert paused["enabled"] is False
    assert api.post(f"/api/v1/schedules/{sid}/resume", headers=member).json()["enabled"] is True
    assert api.delete(f"/api/v1/schedules/{sid}", headers=member).status_code == 204
    assert api.get(f"/api/v1/schedules/{sid}", headers=viewer).status_code == 404
    assert api.delete(f"/api/v1/schedules/{sid}", headers=member).status_code == 404


def test_openapi_and_docs_are_served(api):
    schema = api.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "Taskdeck API"
    assert {"HTTPBearer", "APIKeyCookie"} <= set(schema["components"]["securitySchemes"])
    assert "TaskCreate" in schema["components"]["schemas"]
    assert api.get("/api/v1/docs").status_code == 200


def test_blocking_work_runs_in_the_api_thread_pool_of_configured_size(env, monkeypatch):
    """40 threads fighting for the GIL doubled a list's CPU cost: the API runs its blocking
    work (plain `def` routes, sync dependencies) in `TASKDECK_API_THREADS` threads."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from app.api import create_api
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_API_THREADS", "3")
    get_settings.cache_clear()
    api = create_api()
    lock = threading.Lock()
    running = {"now": 0, "peak": 0}

    @api.get("/probe")
    def probe() -> dict:
        with lock:
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
        time.sleep(0.2)
        with lock:
            running["now"] -= 1
        return {}

    with TestClient(api) as client, ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(lambda _: client.get("/probe").status_code, range(9)))
    assert answers == [200] * 9
    assert running["peak"] == 3


def test_the_api_takes_its_start_up_objects_out_of_the_collectors_way(env):
    """A full collection walked every module, route and model each time: ~100 ms with the
    process stopped, a few times a minute under load. Start-up freezes what it built."""
    import gc

    from fastapi.testclient import TestClient

    from app.api import create_api
    from app.api.deps import GC_YOUNG_THRESHOLD

    threshold = gc.get_threshold()
    try:
        with TestClient(create_api()):
            assert gc.get_freeze_count() > 10_000
            assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() == 0  # and lets go of them when it stops
    finally:
        gc.set_threshold(*threshold)
