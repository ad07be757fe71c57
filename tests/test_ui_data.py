"""What the dashboard pages read, against a real database and Redis: keyset pages of the task list
(100,000 tasks), metric samples with retention, chart aggregates, health checks, and alerts
POSTed to a local webhook receiver."""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import insert, text

from app import alerts, health, metrics, service
from app.db import get_engine, session_scope
from app.models import MetricSample, Task, utcnow
from app.settings import get_settings
from tests.conftest import TEST_DB, WorkerPool, free_port, wait_until

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]


def add_tasks(count: int, seed: int = 1, **fixed) -> None:  # noqa: ANN003
    """Insert `count` finished-looking tasks in bulk (varied status, queue, repo, cost, time)."""
    rnd = random.Random(seed)
    template = Task(title="t", prompt="p", model="m", max_turns=5).model_dump(exclude={"id"})
    now = utcnow()
    rows = []
    for n in range(count):
        status = rnd.choice(STATUSES)
        row = {
            **template,
            "title": f"task {n} {'needle' if n % 97 == 0 else 'hay'}",
            "prompt": f"prompt {n}",
            "status": status,
            "priority": rnd.choice(["high", "default", "low"]),
            "repo": rnd.choice([None, "/repos/a", "/repos/b"]),
            "cost_usd": round(rnd.choice([0.0, 0.01, 0.02, rnd.random()]), 4),
            "duration_ms": rnd.choice([0, 1000, 2000, rnd.randrange(100, 4_000_000)]),
            "created_at": now - timedelta(seconds=count - n),
            "finished_at": now - timedelta(minutes=rnd.randrange(0, 600))
            if status in ("succeeded", "failed", "cancelled")
            else None,
            **fixed,
        }
        rows.append(row)
    with session_scope() as session:
        for start in range(0, len(rows), 20_000):
            session.execute(insert(Task), rows[start : start + 20_000])


def walk(limit: int, **filters) -> list[int]:  # noqa: ANN003
    """Every task id of the list, page after page, following next_cursor."""
    ids: list[int] = []
    cursor = None
    while True:
        page = service.browse_tasks(limit=limit, cursor=cursor, **filters)
        ids += [t.id for t in page.items]
        if not page.next_cursor:
            return ids
        cursor = page.next_cursor


def expected(sort: str, **filters) -> list[int]:  # noqa: ANN003
    with session_scope() as session:
        rows = session.exec(
            text("SELECT id, status, priority, repo, title, cost_usd, duration_ms FROM task")
        ).all()
    keep = [
        r
        for r in rows
        if (not filters.get("status") or r.status == filters["status"])
        and (not filters.get("priority") or r.priority == filters["priority"])
        and (not filters.get("repo") or r.repo == filters["repo"])
        and (not filters.get("text") or filters["text"] in r.title)
    ]
    key = {
        "newest": lambda r: -r.id,
        "oldest": lambda r: r.id,
        "cost": lambda r: (-r.cost_usd, -r.id),
        "duration": lambda r: (-r.duration_ms, -r.id),
    }[sort]
    return [r.id for r in sorted(keep, key=key)]


@pytest.mark.parametrize("sort", ["newest", "oldest", "cost", "duration"])
def test_task_list_pages_cover_every_match_once_in_order(env, sort):
    add_tasks(400)
    for filters in (
        {},
        {"status": "failed"},
        {"priority": "high", "repo": "/repos/a"},
        {"text": "needle"},
    ):
        ids = walk(17, sort=sort, **filters)
        assert ids == expected(sort, **filters), filters
        assert service.browse_tasks(sort=sort, **filters).total == len(ids)


def test_task_list_stays_an_index_walk_with_100k_tasks(env):
    count = 100_000 if TEST_DB == "sqlite" else 20_000  # the PostgreSQL pass: same logic, smaller
    add_tasks(count, seed=7)
    assert service.browse_tasks().total == count
    # A page deep in the list, by cursor, is exactly the next ids: no OFFSET, no skipped rows.
    deep = count * 2 // 5
    page = service.browse_tasks(limit=50, cursor=str(deep + 1))
    assert [t.id for t in page.items] == list(range(deep, deep - 50, -1))
    failed = service.browse_tasks(status="failed", limit=50, cursor=str(count * 3 // 5))
    assert all(t.status == "failed" and t.id < count * 3 // 5 for t in failed.items)
    assert len(failed.items) == 50
    by_cost = service.browse_tasks(sort="cost", limit=30)
    costs = [t.cost_usd for t in by_cost.items]
    assert costs == sorted(costs, reverse=True)
    following = service.browse_tasks(sort="cost", limit=30, cursor=by_cost.next_cursor)
    assert not {t.id for t in following.items} & {t.id for t in by_cost.items}
    assert following.items[0].cost_usd <= costs[-1]

    if get_engine().dialect.name != "sqlite":
        return
    # Each page is read along an index (no sort of the table); the plans say so.
    cases = [
        ([], "newest", "500"),
        ([], "oldest", "500"),
        (service.task_filters("failed", None, None, None), "newest", "500"),
        (service.task_filters(None, "high", None, None), "newest", "500"),
        (service.task_filters(None, None, "/repos/a", None), "newest", "500"),
        ([], "cost", "0.5:500"),
        ([], "duration", "1000:500"),
    ]
    with get_engine().connect() as connection:
        for filters, sort, cursor in cases:
            query = service.task_page_query(filters, sort, cursor).limit(26)
            sql = str(query.compile(get_engine(), compile_kwargs={"literal_binds": True}))
            plan = " | ".join(
                row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            )
            assert "TEMP B-TREE" not in plan, (sort, plan)
            assert plan.startswith("SEARCH task USING"), (sort, plan)  # a range, not a scan


def test_the_sampler_takes_one_sample_per_interval_and_drops_old_ones(env, monkeypatch):
    monkeypatch.setenv("TASKDECK_METRICS_INTERVAL_S", "60")
    monkeypatch.setenv("TASKDECK_METRICS_RETENTION_DAYS", "2")
    get_settings.cache_clear()
    with session_scope() as session:
        session.add(MetricSample(ts=utcnow() - timedelta(days=3), queued=9))
        session.add(MetricSample(ts=utcnow() - timedelta(days=1), queued=4))
    add_tasks(3, status="queued")  # rows only: no jobs in Redis, so the queues stay empty

    first = metrics.tick()
    second = metrics.tick()  # another process (or the same) within the interval: no sample

    assert first is not None and second is None
    assert first.workers == 0 and first.queued == 0 and first.running == 0
    series = metrics.queue_depth_series(hours=72)
    assert series["queued"] == [4, 0]  # the 3-day-old sample was pruned, the new one is stored


def test_chart_aggregates_count_finished_tasks_by_hour_duration_and_day(env):
    now = utcnow()
    add_tasks(
        4,
        status="succeeded",
        finished_at=now,
        duration_ms=5_000,
        cost_usd=0.5,
        input_tokens=100,
        output_tokens=10,
    )
    add_tasks(
        2,
        status="failed",
        finished_at=now - timedelta(hours=2),
        duration_ms=90_000,
        cost_usd=0.25,
        input_tokens=0,
        output_tokens=0,
    )
    add_tasks(1, status="queued", finished_at=None, duration_ms=0)

    hourly = metrics.finished_per_hour(24)
    assert len(hourly["hours"]) == 24
    assert hourly["succeeded"][-1] == 4 and sum(hourly["succeeded"]) == 4
    assert hourly["failed"][-3] == 2 and sum(hourly["failed"]) == 2
    durations = dict(zip(*metrics.duration_distribution().values(), strict=True))
    assert durations["<10 s"] == 4 and durations["1-2 min"] == 2
    daily = metrics.cost_tokens_per_day(3)
    assert sum(daily["cost"]) == pytest.approx(2.5)
    assert sum(daily["tokens"]) == 440


def test_a_chart_with_nothing_to_show_says_so(env):
    from app.components.charts import cost_figure, duration_figure, finished_figure

    def notes(figure) -> list[str]:  # noqa: ANN001
        return [note.text for note in figure.layout.annotations]

    empty = [
        finished_figure(metrics.finished_per_hour(24)),
        duration_figure(metrics.duration_distribution()),
        cost_figure(metrics.cost_tokens_per_day(14)),
    ]
    assert [notes(f) for f in empty] == [
        ["No task finished in the last 24 h"],
        ["No task finished in the last 7 days"],
        ["Nothing spent in the last 14 days"],
    ]
    add_tasks(1, status="succeeded", finished_at=utcnow(), duration_ms=5_000, cost_usd=0.1)
    assert notes(finished_figure(metrics.finished_per_hour(24))) == []
    assert notes(duration_figure(metrics.duration_distribution())) == []
    assert notes(cost_figure(metrics.cost_tokens_per_day(14))) == []


class Receiver:
    """A local HTTP server that keeps the JSON bodies POSTed to it (the alert webhook)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def states(self) -> set[tuple[str, str]]:
        return {(body["alert"], body["state"]) for body in self.bodies}


def test_alerts_fire_and_resolve_with_a_post_to_the_webhook(env, monkeypatch, tmp_path):
    receiver = Receiver()
    monkeypatch.setenv("TASKDECK_ALERT_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("TASKDECK_ALERT_FAILURE_MIN_TASKS", "4")
    get_settings.cache_clear()
    add_tasks(3, status="succeeded", finished_at=utcnow())
    add_tasks(5, status="failed", finished_at=utcnow())

    fired = {a["alert"] for a in alerts.check_and_notify()}

    assert fired == {"failure_rate", "dead_worker"}  # 5 of 8 failed; no worker is alive
    assert receiver.states() == {("failure_rate", "firing"), ("dead_worker", "firing")}
    assert {a["alert"] for a in alerts.active()} == fired  # what the banner shows
    failure = next(b for b in receiver.bodies if b["alert"] == "failure_rate")
    assert "62%" in failure["message"] and failure["source"] == "taskdeck"

    # Nothing changed: no second POST.
    alerts.check_and_notify()
    assert len(receiver.bodies) == 2

    # Workers start and tasks succeed: both alerts clear, each with a "resolved" POST.
    pool = WorkerPool(env, workers=1, log=tmp_path / "worker.log").start()
    try:
        wait_until(lambda: service.worker_stats(), 30, message="a worker")
        add_tasks(10, status="succeeded", finished_at=utcnow())
        assert alerts.check_and_notify() == []
    finally:
        pool.stop()
    assert ("failure_rate", "resolved") in receiver.states()
    assert ("dead_worker", "resolved") in receiver.states()
    assert alerts.active() == []
    receiver.server.shutdown()


def test_queue_wait_alert_names_the_queue(env, monkeypatch):
    monkeypatch.setenv("TASKDECK_ALERT_QUEUE_WAIT_S", "0")
    monkeypatch.setenv("TASKDECK_ALERT_MIN_WORKERS", "0")
    get_settings.cache_clear()
    from app.schemas import TaskCreate

    service.create_task(TaskCreate(prompt="wait in the queue", priority="low"))
    fired = alerts.evaluate()
    assert [a["alert"] for a in fired] == ["queue_wait"]
    assert "taskdeck-low" in fired[0]["message"]


def test_health_checks_say_what_is_wrong(env):
    checks = {c["name"]: c for c in health.checks()}
    assert checks["Redis"]["level"] == "green"
    assert checks["Database"]["level"] == "green"
    assert checks["Worker pool"]["level"] == "red"
    assert "no worker" in checks["Worker pool"]["reason"]
    assert checks["Workspace disk"]["level"] in ("green", "amber", "red")
    assert "GiB free" in checks["Workspace disk"]["detail"]
    assert health.overall(list(checks.values())) == "red"


@pytest.mark.skipif(TEST_DB != "sqlite", reason="the SQLite pass covers the Redis side once")
def test_redis_down_is_red_with_the_reason(env, monkeypatch):
    monkeypatch.setenv("TASKDECK_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    check = health.check_redis()
    assert check["level"] == "red" and "no answer" in check["reason"]


def test_follow_loops_ask_for_open_tabs_without_growing_sys_path():
    """Every follow loop asks whether its tab is still open once per read; Reflex's get_app()
    puts the working directory on sys.path again on each call, so asking must not call it."""
    import sys

    from app.state.base import client_connected

    assert client_connected("no-such-tab") is False  # the real app's socket namespace
    before = list(sys.path)
    for _ in range(50):
        assert client_connected("no-such-tab") is False
    assert sys.path == before
