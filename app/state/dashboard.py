"""State of the dashboard: counts, running tasks with progress, recent tasks and the charts.

A background event per open tab follows the global status stream (`taskdeck:events`): a status
change refreshes counts, running and recent tasks at once (bursts coalesced); the charts and the
running and recent tasks' progress, tokens and cost refresh every few seconds. Nothing else is read.
"""

from __future__ import annotations

import asyncio
import time

import plotly.graph_objects as go
import reflex as rx

from app import live, metrics, service
from app.components import charts
from app.presenters import duration, task_row
from app.state.base import client_connected, note_failure

CHART_EVERY_S = 5.0
PROGRESS_EVERY_S = 2.0
RECENT = 8


def _running_rows() -> list[dict[str, str]]:
    items = metrics.running_tasks()
    usage = metrics.running_usage([item["task"].id for item in items])
    rows = []
    for item in items:
        task, turn, max_turns = item["task"], item["turn"], item["max_turns"]
        started = task.started_at.timestamp() if task.started_at else time.time()
        rows.append(
            {
                **task_row(task, usage.get(task.id)),
                "turn": str(turn),
                "max_turns": str(max_turns),
                "pct": str(min(100, int(100 * turn / max_turns)) if max_turns else 0),
                "elapsed": duration(int(max(0.0, time.time() - started) * 1000)),
            }
        )
    return rows


def _recent_rows() -> list[dict[str, str]]:
    tasks = service.list_tasks(limit=RECENT).items
    usage = metrics.running_usage([t.id for t in tasks if t.status == "running"])
    return [task_row(t, usage.get(t.id)) for t in tasks]


def task_values() -> dict:
    """Counts, recent tasks and running tasks, ready for the state."""
    return {"counts": service.count_by_status(), **live_rows()}


def live_rows() -> dict:
    """Running and recent tasks (what ticks while tasks run: turns, tokens, cost)."""
    return {"recent": _recent_rows(), "running": _running_rows()}


CHART_BUILDERS = {
    "finished_fig": (metrics.finished_per_hour, charts.finished_figure),
    "duration_fig": (metrics.duration_distribution, charts.duration_figure),
    "cost_fig": (metrics.cost_tokens_per_day, charts.cost_figure),
    "depth_fig": (metrics.queue_depth_series, charts.depth_figure),
}


def chart_data() -> dict:
    """The numbers behind each chart (cheap to compare: a figure is rebuilt only on change)."""
    return {name: read() for name, (read, _) in CHART_BUILDERS.items()}


class DashboardState(rx.State):
    """What the dashboard shows; refreshed live by `follow`."""

    counts: dict[str, int] = {}
    running: list[dict[str, str]] = []
    recent: list[dict[str, str]] = []
    # None until the page loads: a default go.Figure() is deep-copied (~60 ms each, its template)
    # into every new tab's state, on every page, and blocks the event loop meanwhile.
    finished_fig: go.Figure | None = None
    duration_fig: go.Figure | None = None
    cost_fig: go.Figure | None = None
    depth_fig: go.Figure | None = None
    following: bool = False
    _chart_data: dict = {}

    def _apply(self, values: dict) -> None:
        for name, value in values.items():
            if getattr(self, name) != value:  # unchanged values send nothing to the browser
                setattr(self, name, value)

    def _apply_charts(self, data: dict) -> None:
        for name, numbers in data.items():
            if self._chart_data.get(name) != numbers:
                setattr(self, name, CHART_BUILDERS[name][1](numbers))
        self._chart_data = data

    @rx.event
    def load(self):
        """Page load: everything once, then follow the status stream."""
        self._apply(task_values())
        self._chart_data = {}
        self._apply_charts(chart_data())
        if not self.following:
            return DashboardState.follow

    @rx.event(background=True)
    async def follow(self):
        """Refresh on every status change and every few seconds, while the tab shows the page."""
        async with self:
            if self.following:
                return
            self.following = True
            token = self.router.session.client_token
        last_chart = last_progress = time.monotonic()
        failing = False  # the last reads failed: read everything again at the next tick
        # Read the counts once the feed is open: a change between the page's load and the
        # subscription left no event for this feed (the counts would show it only at the next).
        stale = True
        try:
            async with live.follow_global("$") as feed:
                while client_connected(token):
                    async with self:
                        if self.router.url.path.rstrip("/") != "":
                            return  # the tab went to another page
                    entries = await feed.next(timeout_s=0 if stale else 1.0)
                    now = time.monotonic()
                    try:
                        if entries or failing or stale:
                            await asyncio.sleep(0.05)  # coalesce a burst of changes
                            values = await asyncio.to_thread(task_values)
                            async with self:
                                self._apply(values)
                            last_progress = now
                        elif now - last_progress >= PROGRESS_EVERY_S:
                            rows = await asyncio.to_thread(live_rows)
                            async with self:
                                self._apply(rows)
                            last_progress = now
                        if failing or now - last_chart >= CHART_EVERY_S:
                            data = await asyncio.to_thread(chart_data)
                            async with self:
                                self._apply_charts(data)
                            last_chart = now
                    except Exception as exc:
                        failing = note_failure("the dashboard", exc, failing)
                    else:
                        failing = stale = False
        finally:
            async with self:
                self.following = False
