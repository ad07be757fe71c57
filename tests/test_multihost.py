"""Scale-out on one machine: three worker "hosts" and two app processes share one Redis and one
PostgreSQL, the way a deployment over several machines does.

Each worker process gets only what a worker on another machine would: TASKDECK_REDIS_URL,
TASKDECK_DATABASE_URL, its own workspace root and Claude config dir, and a host name
(TASKDECK_WORKER_HOST). The two app processes (`reflex run --env prod` on two ports, each with its
own build dir) keep their UI state in Redis (Reflex's Redis state manager, REFLEX_REDIS_URL), so
either can serve any browser behind a load balancer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import expect
from redis import Redis
from sqlmodel import select

from app.db import session_scope
from app.models import Attempt
from app.schemas import TaskCreate
from tests.conftest import (
    ARTIFACTS,
    ROOT,
    VIEWPORTS,
    RedisServer,
    free_port,
    queue_held,
    sign_in,
    wait_for_status,
    wait_until,
)

HOSTS = ("host-a", "host-b", "host-c")
WEB_USER = ("deploy-tester", "deploy-tester-pw")
REFLEX_REDIS_DB = 1  # the app's UI state; the queue and events use db 0


class AppProcess:
    """`reflex run --env prod` on a free port, with its own build directory."""

    def __init__(self, name: str, env: dict[str, str], directory: Path) -> None:
        from app.stack import reflex_env

        self.port = free_port()
        self.log_path = directory / f"app-{name}.log"
        web = Path(f"/tmp/taskdeck-deploy-web-{name}")  # kept between runs: npm cache
        self.env = reflex_env(
            {
                **env,
                "TASKDECK_PORT": str(self.port),
                "REFLEX_WEB_WORKDIR": str(web),
                # Reflex empties its disk-state dir at start: the shared checkout's .states would
                # race with the other app process (and anyone else's run).
                "REFLEX_STATES_WORKDIR": str(directory / f"states-{name}"),
            }
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115
        reflex = str(Path(sys.executable).parent / "reflex")
        self.process = subprocess.Popen(
            [
                reflex,
                "run",
                "--env",
                "prod",
                "--frontend-port",
                str(self.port),
                "--loglevel",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log_path.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2):
                return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)


def worker_env(shared: dict[str, str], host: str, directory: Path) -> dict[str, str]:
    """What one worker host has: the two URLs, its name, its own disk, the model endpoint."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(directory / host),
        "LANG": "C.UTF-8",
        "TASKDECK_REDIS_URL": shared["TASKDECK_REDIS_URL"],
        "TASKDECK_DATABASE_URL": shared["TASKDECK_DATABASE_URL"],
        "TASKDECK_WORKER_HOST": host,
        "TASKDECK_WORKSPACE_ROOT": str(directory / host / "workspaces"),
        "TASKDECK_CLAUDE_CONFIG_ROOT": str(directory / host / "claude"),
        "ANTHROPIC_BASE_URL": shared["ANTHROPIC_BASE_URL"],
        "ANTHROPIC_API_KEY": "sk-test-key",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres_server, demo_model):
    """One Redis, one PostgreSQL database, three worker hosts and two app processes."""
    directory = tmp_path_factory.mktemp("cluster")
    redis = RedisServer(directory).start()
    shared = {
        "TASKDECK_REDIS_URL": redis.url,
        "TASKDECK_DATABASE_URL": postgres_server.create_database("cluster"),
        "ANTHROPIC_BASE_URL": demo_model.url,
    }
    from app.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        for key, value in shared.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        from app.db import upgrade_database

        upgrade_database()
        from app import auth

        auth.create_user(*WEB_USER, role="member")  # every page needs an account
        app_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TASKDECK_")},
            **shared,
            "TASKDECK_WORKSPACE_ROOT": str(directory / "app" / "workspaces"),
            "REFLEX_REDIS_URL": redis.url.rsplit("/", 1)[0] + f"/{REFLEX_REDIS_DB}",
        }
        apps = [AppProcess(name, app_env, directory).start() for name in ("a", "b")]
        workers = []
        for host in HOSTS:
            log = open(directory / f"worker-{host}.log", "ab")  # noqa: SIM115
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "worker", "--workers", "1"],
                    cwd=ROOT,
                    env=worker_env(shared, host, directory),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        try:
            for app in apps:
                wait_until(app.ready, 600, interval=0.5, message=f"app on {app.url}")
            yield {"apps": apps, "redis": redis, "workers": workers, "directory": directory}
        finally:
            for process in workers:
                if process.poll() is None:
                    os.killpg(process.pid, 15)
            for process in workers:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, 9)
            for app in apps:
                app.stop()
            redis.stop()
    get_settings.cache_clear()


def test_three_worker_hosts_share_100_tasks_and_the_workers_page_shows_them(cluster, browser):
    from app import service

    task_ids = [
        service.create_task(TaskCreate(prompt=f"Say hello {n} [scenario:text]", max_turns=2)).id
        for n in range(100)
    ]
    for task_id in task_ids:
        task = wait_for_status(task_id, ("succeeded", "failed", "cancelled"), timeout=900)
        assert task.status == "succeeded", (task_id, task.status_reason)

    with session_scope() as session:
        attempts = session.exec(select(Attempt.task_id, Attempt.worker)).all()
    assert sorted(task_id for task_id, _ in attempts) == sorted(task_ids), "one attempt each"
    per_host = Counter(worker.split(".")[0] for _, worker in attempts)
    assert set(per_host) == set(HOSTS), per_host
    assert min(per_host.values()) >= 10, f"the tasks did not spread: {per_host}"
    print(f"tasks per worker host: {dict(per_host)}")

    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    sign_in(page, cluster["apps"][0].url, WEB_USER)
    page.goto(cluster["apps"][0].url + "/queues")
    cards = page.locator(".worker-card")
    expect(cards).to_have_count(len(HOSTS), timeout=60_000)
    for host in HOSTS:
        expect(cards.filter(has_text=f"{host}.")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "multihost-workers.png"), full_page=True)
    page.close()


def test_two_app_processes_each_serve_a_live_task_page(cluster, browser):
    from app import service

    # 20 text deltas 0.4 s apart: both pages must follow it while it runs. The queue is paused
    # until both pages are open and show the task waiting, so a slow page load cannot miss the run.
    with queue_held():
        task = service.create_task(
            TaskCreate(prompt="Tell a slow story [scenario:slow] [delay:0.4]", max_turns=2)
        )
        pages = []
        for app in cluster["apps"]:
            page = browser.new_page(viewport=VIEWPORTS["phone"])
            sign_in(page, app.url, WEB_USER)
            page.goto(f"{app.url}/tasks/{task.id}")
            expect(page.locator("#task-status")).to_have_attribute(
                "data-status", "queued", timeout=90_000
            )
            pages.append(page)
    for page in pages:  # live: each page sees the run start while it is open
        expect(page.locator("#task-status")).to_have_attribute(
            "data-status", "running", timeout=90_000
        )
    for page in pages:
        expect(page.locator("#task-status")).to_have_attribute(
            "data-status", "succeeded", timeout=90_000
        )
        expect(page.locator("#event-log .log-entry[data-kind='result']")).to_have_count(1)
    assert wait_for_status(task.id, ("succeeded",), timeout=10).status == "succeeded"

    # The UI state of both apps' clients lives in the shared Redis, not in either process.
    reflex_redis = Redis(port=cluster["redis"].port, db=REFLEX_REDIS_DB)
    assert reflex_redis.dbsize() > 0, "the apps do not keep their state in Redis"
    ARTIFACTS.mkdir(exist_ok=True)
    for index, page in enumerate(pages):
        page.screenshot(path=str(ARTIFACTS / f"multihost-app-{index}.png"), full_page=True)
        page.close()
