"""State of the queues & workers page and of the system health page (polled while shown)."""

from __future__ import annotations

import asyncio

import reflex as rx

from app import health, service
from app.presenters import age
from app.state.base import client_connected, note_failure

QUEUES_EVERY_S = 2.0
HEALTH_EVERY_S = 5.0


def queue_rows() -> list[dict[str, str]]:
    """Each priority queue's counts, paused flag and oldest wait, as display strings."""
    paused = set(service.paused_queues())
    return [
        {
            "name": q["name"],
            "priority": q["priority"],
            "queued": str(q["queued"]),
            "running": str(q["running"]),
            "failed": str(q["failed"]),
            "scheduled": str(q["scheduled"]),
            "wait": age(q["oldest_wait_s"]) if q["queued"] else "-",
            "paused": "true" if q["name"] in paused else "",
        }
        for q in service.queue_stats()
    ]


def worker_rows() -> list[dict[str, str]]:
    """Each live worker: state, task, heartbeat age, memory."""
    return [
        {
            "name": w["name"],
            "state": w["state"],
            "tone": {"busy": "blue", "idle": "green"}.get(w["state"], "gray"),
            "task": f"#{w['task_id']}" if w["task_id"] else "",
            "href": f"/tasks/{w['task_id']}" if w["task_id"] else "",
            "heartbeat": age(w["heartbeat_age_s"]),
            "memory": f"{w['memory_mb']:.0f} MB" if w["memory_mb"] is not None else "-",
            "done": f"{w['successful']} ok / {w['failed']} failed",
        }
        for w in service.worker_stats()
    ]


class QueuesState(rx.State):
    """Queues with pause/resume, and the workers with what they run."""

    queues: list[dict[str, str]] = []
    workers: list[dict[str, str]] = []
    message: str = ""
    polling: bool = False

    @rx.event
    def load(self):
        self.message = ""
        self.queues, self.workers = queue_rows(), worker_rows()
        if not self.polling:
            return QueuesState.poll

    @rx.event
    def pause(self, priority: str):
        self._control(priority, paused=True)

    @rx.event
    def resume(self, priority: str):
        self._control(priority, paused=False)

    def _control(self, priority: str, paused: bool) -> None:
        service.set_queue_paused(priority, paused)  # what the API's pause / resume call too
        self.message = f"queue {priority} {'paused' if paused else 'resumed'}"
        self.queues = queue_rows()

    @rx.event(background=True)
    async def poll(self):
        """Refresh the figures every few seconds while the tab shows this page."""
        async with self:
            if self.polling:
                return
            self.polling = True
            token = self.router.session.client_token
        failing = False
        try:
            while client_connected(token):
                await asyncio.sleep(QUEUES_EVERY_S)
                async with self:
                    if self.router.url.path.rstrip("/") != "/queues":
                        return
                try:
                    queues, workers = await asyncio.to_thread(lambda: (queue_rows(), worker_rows()))
                except Exception as exc:  # Redis restarting, say: the next poll tries again
                    failing = note_failure("the queues page", exc, failing)
                    continue
                failing = False
                async with self:
                    self.queues, self.workers = queues, workers
        finally:
            async with self:
                self.polling = False


class HealthState(rx.State):
    """The health checks, re-run every few seconds while shown."""

    checks: list[dict[str, str]] = []
    overall: str = ""
    polling: bool = False

    @rx.event
    def load(self):
        self.checks = health.checks()
        self.overall = health.overall(self.checks)
        if not self.polling:
            return HealthState.poll

    @rx.event(background=True)
    async def poll(self):
        async with self:
            if self.polling:
                return
            self.polling = True
            token = self.router.session.client_token
        try:
            while client_connected(token):
                await asyncio.sleep(HEALTH_EVERY_S)
                async with self:
                    if self.router.url.path.rstrip("/") != "/health":
                        return
                checks = await asyncio.to_thread(health.checks)
                async with self:
                    self.checks, self.overall = checks, health.overall(checks)
        finally:
            async with self:
                self.polling = False
