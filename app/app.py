"""The Reflex app: registers the pages and mounts the REST API under /api/v1. Thin."""

from __future__ import annotations

import reflex as rx

from app.api import create_api
from app.pages.dashboard import dashboard
from app.pages.task import task_page
from app.state.task_detail import TaskDetailState
from app.state.tasks import TaskListState

app = rx.App(
    stylesheets=["/taskdeck.css"],
    api_transformer=create_api(),
)
app.add_page(task_page, route="/tasks/[task_id]", title="Task | Taskdeck",
             on_load=TaskDetailState.load)
app.add_page(dashboard, route="/", title="Taskdeck", on_load=TaskListState.load)
