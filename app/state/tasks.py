"""State of the task list page: server-side filters, sort, keyset pages, bulk cancel / retry.

Filtering and paging happen in the database (`service.browse_tasks`): the browser only ever
holds one page. A background event per open tab reloads the page it shows when any task changes
status (the global status stream), coalescing bursts, and every few seconds shows the running
tasks' tokens and cost so far (their newest usage events).
"""

from __future__ import annotations

import asyncio
import time

import reflex as rx

from app import live, metrics, service
from app.models import TaskStatus
from app.presenters import task_row, with_usage
from app.queue import PRIORITIES
from app.state.base import client_connected, note_failure

ALL = "all"
PAGE_SIZES = ["25", "50", "100"]
USAGE_EVERY_S = 2.0  # how often the running tasks of the page show their new tokens and cost


class TaskListState(rx.State):
    """Filters, the current page of tasks and the selection for bulk actions."""

    tasks: list[dict[str, str]] = []
    total: int = 0
    status_filter: str = ALL
    queue_filter: str = ALL
    repo_filter: str = ALL
    search: str = ""
    sort: str = "newest"
    page_size: str = "25"
    cursors: list[str] = [""]  # cursor of each page seen so far; the last is the current page
    next_cursor: str = ""
    repos: list[str] = []
    selected: list[str] = []
    bulk_message: str = ""
    following: bool = False

    @rx.var
    def page(self) -> int:
        """The current page number, from 1."""
        return len(self.cursors)

    @rx.var
    def pages(self) -> int:
        """How many pages the filtered list has."""
        size = int(self.page_size)
        return max(1, (self.total + size - 1) // size)

    @rx.var
    def all_selected(self) -> bool:
        """Whether every task of the page is selected."""
        return bool(self.tasks) and all(t["id"] in self.selected for t in self.tasks)

    def _reload(self) -> None:
        page = service.browse_tasks(
            status=None if self.status_filter == ALL else self.status_filter,
            priority=None if self.queue_filter == ALL else self.queue_filter,
            repo=None if self.repo_filter == ALL else self.repo_filter,
            text=self.search or None,
            sort=self.sort,
            limit=int(self.page_size),
            cursor=self.cursors[-1] or None,
        )
        usage = metrics.running_usage([t.id for t in page.items if t.status == "running"])
        self.tasks = [task_row(task, usage.get(task.id)) for task in page.items]
        self.total = page.total or 0
        self.next_cursor = page.next_cursor or ""
        if not self.tasks and len(self.cursors) > 1:  # the page emptied (filters, deletions)
            self.cursors = [""]
            self._reload()

    def _restart(self) -> None:
        self.cursors = [""]
        self.selected = []
        self._reload()

    @rx.event
    def load(self):
        """Page load: filters from the URL (?status=failed&queue=high&q=...), the first page."""
        params = self.router.url.query_parameters
        status = params.get("status", ALL)
        self.status_filter = status if status in TaskStatus.ALL else ALL
        queue = params.get("queue", ALL)
        self.queue_filter = queue if queue in PRIORITIES else ALL
        self.search = params.get("q", "")
        self.repos = service.task_repos()
        self.bulk_message = ""
        self._restart()
        if not self.following:
            return TaskListState.follow

    @rx.event
    def set_status_filter(self, value: str):
        self.status_filter = value
        self._restart()

    @rx.event
    def set_queue_filter(self, value: str):
        self.queue_filter = value
        self._restart()

    @rx.event
    def set_repo_filter(self, value: str):
        self.repo_filter = value
        self._restart()

    @rx.event
    def set_search(self, value: str):
        self.search = value.strip()
        self._restart()

    @rx.event
    def set_sort(self, value: str):
        self.sort = value if value in service.TASK_SORTS else "newest"
        self._restart()

    @rx.event
    def set_page_size(self, value: str):
        self.page_size = value if value in PAGE_SIZES else "25"
        self._restart()

    @rx.event
    def next_page(self):
        if self.next_cursor:
            self.cursors.append(self.next_cursor)
            self._reload()

    @rx.event
    def prev_page(self):
        if len(self.cursors) > 1:
            self.cursors.pop()
            self._reload()

    @rx.event
    def first_page(self):
        self.cursors = [""]
        self._reload()

    @rx.event
    def toggle(self, task_id: str, checked: bool):
        if checked and task_id not in self.selected:
            self.selected.append(task_id)
        elif not checked and task_id in self.selected:
            self.selected.remove(task_id)

    @rx.event
    def toggle_all(self, checked: bool):
        page_ids = [t["id"] for t in self.tasks]
        if checked:
            self.selected = list(dict.fromkeys(self.selected + page_ids))
        else:
            self.selected = [i for i in self.selected if i not in page_ids]

    @rx.event
    def clear_selection(self):
        self.selected = []

    def _bulk(self, action, verb: str) -> None:  # noqa: ANN001
        result = action([int(i) for i in self.selected])
        skipped = len(result.skipped)
        self.bulk_message = f"{verb} {len(result.done)} task(s)" + (
            f"; {skipped} skipped (not in a state that allows it)" if skipped else ""
        )
        self.selected = []
        self._reload()

    @rx.event
    def bulk_cancel(self):
        """Cancel the selected tasks that are queued or running."""
        self._bulk(service.cancel_many, "cancelled")

    @rx.event
    def bulk_retry(self):
        """Retry the selected tasks that failed or were cancelled."""
        self._bulk(service.retry_many, "retried")

    def _show_usage(self, usage: dict[int, dict]) -> None:
        """Running tasks of the page with their tokens and cost so far."""
        if usage:
            self.tasks = [with_usage(t, usage.get(int(t["id"]))) for t in self.tasks]

    @rx.event(background=True)
    async def follow(self):
        """Reload the shown page whenever a task changes status, while the tab is on this page."""
        async with self:
            if self.following:
                return
            self.following = True
            token = self.router.session.client_token
        last_usage = time.monotonic()
        failing = False  # the last reload failed: reload at the next tick
        # Reload once the feed is open: a change between the page's load and the subscription
        # left no event for this feed (the list would show it only at the next change).
        stale = True
        try:
            async with live.follow_global("$") as feed:
                while client_connected(token):
                    async with self:
                        if self.router.url.path.rstrip("/") != "/tasks":
                            return
                        running = [int(t["id"]) for t in self.tasks if t["status"] == "running"]
                    entries = await feed.next(timeout_s=0 if stale else 1.0)
                    try:
                        if entries or failing or stale:
                            await asyncio.sleep(0.2)  # coalesce bursts of changes
                            async with self:
                                self._reload()
                        elif running and time.monotonic() - last_usage >= USAGE_EVERY_S:
                            usage = await asyncio.to_thread(metrics.running_usage, running)
                            async with self:
                                self._show_usage(usage)
                            last_usage = time.monotonic()
                    except Exception as exc:
                        failing = note_failure("the task list", exc, failing)
                    else:
                        failing = stale = False
        finally:
            async with self:
                self.following = False
