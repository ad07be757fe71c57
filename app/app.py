"""The Reflex app: registers the pages and mounts the REST API under /api/v1. Thin."""

from __future__ import annotations

import os

import reflex as rx

from app import metrics
from app.api import create_api
from app.api.deps import tune_api_process
from app.pages.dashboard import dashboard
from app.pages.login import login_page
from app.pages.new_task import new_task_page
from app.pages.system import health_page, queues_page
from app.pages.task import task_page
from app.pages.tasks import tasks_page
from app.pages.tokens import tokens_page
from app.pages.users import users_page
from app.state.auth import AuthGuard
from app.state.dashboard import DashboardState
from app.state.new_task import NewTaskState
from app.state.system import HealthState, QueuesState
from app.state.task_detail import TaskDetailState
from app.state.tasks import TaskListState
from app.state.tokens import TokensState
from app.state.users import UsersState

app = rx.App(
    stylesheets=["/taskdeck.css"],
    api_transformer=create_api(),
)
app.add_middleware(AuthGuard())  # every page event needs a session; viewers cannot write
app.add_page(login_page, route="/login", title="Sign in | Taskdeck")
app.add_page(tokens_page, route="/tokens", title="API tokens | Taskdeck", on_load=TokensState.load)
app.add_page(
    task_page, route="/tasks/[task_id]", title="Task | Taskdeck", on_load=TaskDetailState.load
)
app.add_page(
    dashboard, route="/", title="Taskdeck", on_load=[DashboardState.load, NewTaskState.load]
)
app.add_page(tasks_page, route="/tasks", title="Tasks | Taskdeck", on_load=TaskListState.load)
app.add_page(new_task_page, route="/new", title="New task | Taskdeck", on_load=NewTaskState.load)
app.add_page(queues_page, route="/queues", title="Queues | Taskdeck", on_load=QueuesState.load)
app.add_page(users_page, route="/users", title="Users | Taskdeck", on_load=UsersState.load)
app.add_page(health_page, route="/health", title="Health | Taskdeck", on_load=HealthState.load)
app.register_lifespan_task(tune_api_process)  # thread pool and GC: see app/api/deps.py
app.register_lifespan_task(metrics.run_forever)  # samples metrics + checks alerts (one at a time)

if os.environ.get("TASKDECK_BENCH_PAGES") == "1":  # the bare pipe of bench/live_latency.py
    from app.pages.bench_pipe import bench_pipe_page

    app.add_page(bench_pipe_page, route="/bench/pipe/[n]", title="pipe")
