"""State of the new-task form (full page and the dashboard's quick form): validate, submit, go.

Every field is validated by `TaskCreate` (pydantic), the same contract the REST API uses; its
errors are shown under the field they name.
"""

from __future__ import annotations

import reflex as rx
from pydantic import ValidationError

from app import service
from app.schemas import ScheduleCreate, TaskCreate
from app.settings import get_settings

FORM_FIELDS = (
    "prompt",
    "cwd",
    "repo",
    "base_ref",
    "model",
    "max_turns",
    "priority",
    "timeout_s",
    "max_attempts",
    "permission_mode",
)
SCHEDULE_FIELDS = ("run_at", "cron", "timezone")
MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"]


class NewTaskState(rx.State):
    """The submit form: inline errors per field and the recent places to pick from."""

    errors: dict[str, str] = {}
    form_error: str = ""
    scheduled: str = ""
    recent_places: list[str] = []
    models: list[str] = []

    @rx.event
    def load(self):
        """Fill the recent repositories/directories and the model suggestions."""
        self.errors, self.form_error, self.scheduled = {}, "", ""
        try:
            self.recent_places = service.recent_places()
        except Exception:
            self.recent_places = []
        default = get_settings().default_model
        self.models = [default] + [m for m in MODELS if m != default]

    @rx.event
    def submit(self, form: dict):
        """Validate the form; store and enqueue the task; open its page."""
        self.errors, self.form_error, self.scheduled = {}, "", ""
        data = {key: str(form.get(key) or "").strip() for key in FORM_FIELDS}
        when = {key: str(form.get(key) or "").strip() for key in SCHEDULE_FIELDS}
        when = {key: value for key, value in when.items() if value}
        payload = {k: v for k, v in data.items() if v or k == "prompt"}
        try:
            task_in = TaskCreate.model_validate(payload)
        except ValidationError as exc:
            self.errors = form_errors(exc)
            if not self.errors:
                self.form_error = "the task is not valid"
            return
        if "run_at" in when or "cron" in when:  # a time zone alone schedules nothing
            return self._schedule(task_in, when)
        try:
            task = service.create_task(task_in)
        except service.QueueUnavailable as exc:
            self.form_error = str(exc)
            return
        return rx.redirect(f"/tasks/{task.id}")

    def _schedule(self, task_in: TaskCreate, when: dict[str, str]) -> None:
        """Store a schedule (a time or a cron expression) instead of running the task now."""
        try:
            data = ScheduleCreate(name=service.title_of(task_in.prompt), task=task_in, **when)
        except ValidationError as exc:
            self.errors = form_errors(exc)
            return
        schedule = service.create_schedule(data)
        local = schedule.next_run_local
        next_run = local.strftime("%Y-%m-%d %H:%M") if local else "-"
        self.scheduled = (
            f"Scheduled as schedule #{schedule.id}: next run {next_run} {schedule.timezone}"
        )


def form_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic errors as {field: message} for the form ("form" for whole-form errors)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [part for part in error["loc"] if part != "task"]  # a schedule's task fields
        field = str(loc[0]) if loc else "form"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "int_parsing":
            message = "enter a whole number"
        elif error["type"] == "greater_than_equal":
            message = f"at least {error['ctx']['ge']}"
        elif error["type"].startswith("datetime"):
            message = "enter a date and time"
        elif error["type"] == "less_than_equal":
            message = f"at most {error['ctx']['le']}"
        errors.setdefault(field, message)
    return errors
