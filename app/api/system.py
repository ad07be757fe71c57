"""/api/v1/health (liveness, readiness), /api/v1/metrics (Prometheus text) and /api/v1/workers.

Liveness and readiness need no credential (load balancers and orchestrators call them); the
metrics and the worker list need the `read` scope.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import service
from app.api.deps import Reader
from app.db import get_engine
from app.queue import get_redis
from app.schemas import WorkerOut

router = APIRouter(prefix="/api/v1")

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "taskdeck_api_requests",
    "API requests served.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "taskdeck_api_request_seconds",
    "API request duration.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 10),
    registry=REGISTRY,
)


class StateCollector:
    """Task counts, queue depths and workers, read at scrape time."""

    def describe(self) -> list:
        """Nothing up front: the figures are read from the database and Redis when scraped."""
        return []

    def collect(self):  # noqa: ANN201
        tasks = GaugeMetricFamily("taskdeck_tasks", "Tasks by status.", labels=["status"])
        for name, count in service.count_by_status().items():
            tasks.add_metric([name], count)
        yield tasks
        jobs = GaugeMetricFamily(
            "taskdeck_queue_jobs", "Jobs per queue and state.", labels=["queue", "state"]
        )
        wait = GaugeMetricFamily(
            "taskdeck_queue_oldest_wait_seconds", "Wait of the oldest queued job.", labels=["queue"]
        )
        for queue in service.queue_stats():
            for state in ("queued", "running", "failed", "scheduled"):
                jobs.add_metric([queue["name"], state], queue[state])
            wait.add_metric([queue["name"]], queue["oldest_wait_s"])
        yield jobs
        yield wait
        workers = service.worker_stats()
        yield GaugeMetricFamily("taskdeck_workers", "Live RQ workers.", value=len(workers))
        busy = sum(1 for w in workers if w["state"] == "busy")
        yield GaugeMetricFamily("taskdeck_workers_busy", "Workers running a task.", value=busy)


REGISTRY.register(StateCollector())


class RequestMetrics:
    """ASGI middleware: count and time the /api/ requests by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def send_and_note(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(code)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


@router.get("/health", tags=["health"])
def health() -> dict[str, str]:
    """Liveness (kept for old callers): the process answers."""
    return {"status": "ok"}


@router.get("/health/live", tags=["health"])
def live() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


def _check(probe) -> str:  # noqa: ANN001
    try:
        probe()
        return "ok"
    except Exception as exc:  # the reason, never a URL or a credential
        return f"down: {type(exc).__name__}"


@router.get("/health/ready", tags=["health"], responses={503: {"description": "Not ready"}})
def ready() -> JSONResponse:
    """Readiness: the database and Redis answer (503 with the failing part otherwise)."""

    def database() -> None:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))

    checks: dict[str, Any] = {"database": _check(database), "redis": _check(get_redis().ping)}
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks},
        status_code=status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get(
    "/metrics",
    tags=["health"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(_: Reader) -> Response:
    """Prometheus text format: tasks by status, queue depths, workers, API requests."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/workers", response_model=list[WorkerOut], tags=["workers"])
def workers(_: Reader) -> list[WorkerOut]:
    """The live RQ workers, the task each runs, heartbeat age and memory."""
    return [WorkerOut.model_validate(w) for w in service.worker_stats()]
