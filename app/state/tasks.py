"""State of the dashboard: the new-task form and the live task list with counts."""

from __future__ import annotations

import asyncio

import reflex as rx
from pydantic import ValidationError

from app import live, service
from app.presenters import task_row
from app.schemas import TaskCreate
from app.state.base import client_connected

FORM_FIELDS = ("prompt", "cwd", "repo", "model", "max_turns", "priority")
LIST_SIZE = 50


class TaskListState(rx.State):
    """The live task list (fed by the global status stream) and the submit form."""

    tasks: list[dict[str, str]] = []
    counts: dict[str, int] = {}
    status_filter: str = "all"
    search: str = ""
    errors: dict[str, str] = {}
    form_error: str = ""
    submitting: bool = False
    following: bool = False

    def _reload(self) -> None:
        status = None if self.status_filter == "all" else self.status_filter
        page = service.list_tasks(status=status, text=self.search or None, limit=LIST_SIZE)
        self.tasks = [task_row(task) for task in page.items]
        self.counts = service.count_by_status()

    @rx.event
    def load(self):
        """Page load: fill the list and start following status changes."""
        self._reload()
        if not self.following:
            return TaskListState.follow

    @rx.event
    def set_status_filter(self, value: str):
        self.status_filter = value
        self._reload()

    @rx.event
    def set_search(self, value: str):
        self.search = value
        self._reload()

    @rx.event(background=True)
    async def follow(self):
        """Refresh the list whenever any task changes status, while the tab is open."""
        async with self:
            if self.following:
                return
            self.following = True
            token = self.router.session.client_token
        after = await asyncio.to_thread(live.last_global_id)
        try:
            while client_connected(token):
                entries = await live.aread_global(after, 1000)
                if not entries:
                    continue
                after = entries[-1][0]
                async with self:
                    self._reload()
                await asyncio.sleep(0.05)  # coalesce bursts of changes
        finally:
            async with self:
                self.following = False

    @rx.event
    def submit(self, form: dict):
        """Validate the form; store and enqueue the task; open its page."""
        self.errors = {}
        self.form_error = ""
        data = {key: (form.get(key) or "").strip() for key in FORM_FIELDS}
        payload = {k: v for k, v in data.items() if v or k == "prompt"}
        try:
            task_in = TaskCreate.model_validate(payload)
        except ValidationError as exc:
            self.errors = form_errors(exc)
            if not self.errors:
                self.form_error = "the task is not valid"
            return
        try:
            task = service.create_task(task_in)
        except service.QueueUnavailable as exc:
            self.form_error = str(exc)
            return
        self._reload()
        return rx.redirect(f"/tasks/{task.id}")


def form_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic errors as {field: message} for the form."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "int_parsing":
            message = "enter a whole number"
        errors.setdefault(field, message)
    return errors

