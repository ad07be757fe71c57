"""Real parts for tests: a redis-server on a free port, a SQLite file per test, the scripted
fake Anthropic API (worker/demo_model.py), and worker processes running the real claude CLI."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = ""):  # noqa: ANN001
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")


class RedisServer:
    """A redis-server process of our own (never the machine's 6379)."""

    def __init__(self, directory: Path, appendonly: bool = False) -> None:
        self.port = free_port()
        self.directory = directory
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: run `make test`, which installs it"
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes" if self.appendonly else "no",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis(port=self.port)
        wait_until(lambda: _pings(client), 10, message="redis-server")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


def _pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture(scope="session", autouse=True)
def warm_runner_dir() -> Iterator[Path]:
    """The wrapper's warm runners (worker/warm_runner.py) live in a directory of this session's
    own, and are stopped when it ends."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="td-runner-"))  # short: it holds Unix socket paths
    previous = os.environ.get("TASKDECK_RUNNER_DIR")
    os.environ["TASKDECK_RUNNER_DIR"] = str(path)
    yield path
    for pid_file in path.glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
    if previous is None:
        os.environ.pop("TASKDECK_RUNNER_DIR", None)
    else:
        os.environ["TASKDECK_RUNNER_DIR"] = previous
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_model():
    from worker.demo_model import DemoModel

    model = DemoModel(default_scenario="demo").start()
    yield model
    model.stop()


TEST_DB = os.environ.get("TASKDECK_TEST_DB", "sqlite")  # `make test` runs again with "postgres"


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    """On the PostgreSQL pass (`make test` runs it after the SQLite pass), keep only the tests that
    get their database from `database_url` (through `env`): the others do not touch the database
    or use the PostgreSQL server directly, and already ran in the first pass."""
    if TEST_DB != "postgres":
        return
    keep = [item for item in items if "database_url" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001, ANN201
    """A failed test that used the web stack carries the end of the stack's log (the server's
    side of what the browser saw: a CI failure must say more than what the page showed)."""
    report = yield
    stack = item.funcargs.get("web_stack") if hasattr(item, "funcargs") else None
    if report.failed and stack is not None and stack.log_path.exists():
        report.sections.append(("web stack log (end)", stack.log_path.read_text()[-8000:]))
    return report


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A PostgreSQL server of the tests' own (tests/pg.py), for the whole session."""
    from tests.pg import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def database_url(request, tmp_path) -> str:
    """A fresh, empty database for one test: a SQLite file, or with TASKDECK_TEST_DB=postgres a
    new database on the session's PostgreSQL server."""
    if TEST_DB == "postgres":
        return request.getfixturevalue("postgres_server").create_database()
    assert TEST_DB == "sqlite", f"TASKDECK_TEST_DB must be sqlite or postgres, not {TEST_DB!r}"
    return f"sqlite:///{tmp_path / 'taskdeck.db'}"


@pytest.fixture
def env(tmp_path, redis_server, demo_model, database_url, monkeypatch) -> dict[str, str]:
    """TASKDECK_* settings for one test: its own database, workspaces and a clean Redis."""
    Redis.from_url(redis_server.url).flushdb()
    values = {
        "TASKDECK_DATABASE_URL": database_url,
        "TASKDECK_REDIS_URL": redis_server.url,
        "TASKDECK_WORKSPACE_ROOT": str(tmp_path / "workspaces"),
        "TASKDECK_CLAUDE_CONFIG_ROOT": str(tmp_path / "claude"),
        "TASKDECK_RETRY_BACKOFF_S": "1",
        "TASKDECK_WORKER_TTL_S": "10",
        "TASKDECK_MAINTENANCE_INTERVAL_S": "2",
        "ANTHROPIC_BASE_URL": demo_model.url,
        "ANTHROPIC_API_KEY": "sk-test-key",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    from app.db import upgrade_database
    from app.settings import get_settings

    get_settings.cache_clear()
    upgrade_database()
    yield values
    get_settings.cache_clear()


class WorkerPool:
    """`python -m worker` as a child process (its own process group), as `make run` starts it."""

    def __init__(self, env: dict[str, str], workers: int = 1, log: Path | None = None) -> None:
        self.env = {**os.environ, **env}
        self.workers = workers
        self.log_path = log
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerPool:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker", "--workers", str(self.workers)],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture
def worker_pool(env, tmp_path) -> Iterator[WorkerPool]:
    pool = WorkerPool(env, workers=2, log=tmp_path / "worker.log").start()
    yield pool
    pool.stop()
    log = tmp_path / "worker.log"
    if log.exists():
        sys.stdout.write(log.read_text()[-4000:])


def wait_for_status(task_id: int, statuses: tuple[str, ...], timeout: float = 60.0):
    from app import service

    return wait_until(
        lambda: (t := service.get_task(task_id)).status in statuses and t,
        timeout,
        interval=0.1,
        message=f"task {task_id} to reach {statuses}",
    )


@contextmanager
def queue_held(priority: str = "default") -> Iterator[None]:
    """Keep a priority queue paused for the block: a task created inside it waits, so a browser
    page opened meanwhile (slow on a loaded CI machine) cannot miss the run it means to watch."""
    from app import service

    service.pause_queue(priority)
    try:
        yield
    finally:
        service.resume_queue(priority)


class WebStack:
    """`python -m app.stack` (what `make run` starts) on free ports, in demo mode by default."""

    def __init__(self, directory: Path, redis_url: str, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.directory = directory
        self.log_path = directory / "stack.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "TASKDECK_"))}
        env.update(
            TASKDECK_PORT=str(self.port),
            TASKDECK_REDIS_URL=redis_url,
            TASKDECK_DATABASE_URL=f"sqlite:///{directory / 'taskdeck.db'}",
            # Every browser test signs in from 127.0.0.1: more than 10 a minute in a fast run.
            TASKDECK_LOGIN_RATE_LIMIT="10000",
            TASKDECK_WORKSPACE_ROOT=str(directory / "workspaces"),
            TASKDECK_CLAUDE_CONFIG_ROOT=str(directory / "claude"),
            TASKDECK_ADMIN_PASSWORD_FILE=str(directory / "admin-password"),
            CLAUDE_CODE_MAX_RETRIES="0",
            # Reflex empties its disk-state dir at start: never the checkout's shared .states.
            REFLEX_STATES_WORKDIR=str(directory / "states"),
        )
        env.update(extra_env or {})
        self.env = env
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 600) -> WebStack:
        import urllib.request

        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.stack"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2):
                    return True
            except Exception:
                return False

        wait_until(ready, timeout, interval=0.5, message="the web stack")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def web_stack(tmp_path_factory, redis_server) -> Iterator[WebStack]:
    """The whole product, started like `make run` (demo mode: no ANTHROPIC_API_KEY)."""
    stack = WebStack(tmp_path_factory.mktemp("stack"), redis_server.url.replace("/0", "/5"))
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium, one per test module: Playwright's sync API keeps an event loop
    running in the main thread while it is open, and asyncio.run() in a later module's test
    would refuse to start beside it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


ARTIFACTS = ROOT / "test-artifacts"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}


WEB_USER = ("browser-tester", "browser-tester-pw")


@pytest.fixture(scope="session")
def web_user(web_stack) -> tuple[str, str]:
    """A member account on the web stack's database (made with `taskdeck user create`)."""
    create_account(web_stack, WEB_USER, "member")
    return WEB_USER


def create_account(web_stack, user: tuple[str, str], role: str) -> None:  # noqa: ANN001
    """Make an account on the web stack's database with `taskdeck user create`, as an admin
    would (a second call finds it made: fine)."""
    subprocess.run(
        [sys.executable, "-m", "app.cli", "user", "create", user[0], "--role", role]
        + ["--password-stdin"],
        input=user[1] + "\n",
        text=True,
        env=web_stack.env,
        cwd=ROOT,
        capture_output=True,
    )


def sign_in(page, base_url: str, user: tuple[str, str]) -> None:  # noqa: ANN001
    """Sign a Playwright page in through the login form (every page needs an account)."""
    from playwright.sync_api import expect

    page.goto(base_url + "/login")
    # The button is busy until the page is connected; on a loaded machine that takes a while.
    expect(page.locator("#login-submit")).to_be_enabled(timeout=60_000)
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("#login-submit")
    page.wait_for_function(
        "() => !location.pathname.startsWith('/login')"
        " || document.querySelector('#login-error') !== null",
        timeout=60_000,
    )
    if "/login" in page.url:
        refusal = page.locator("#login-error").inner_text()
        raise AssertionError(f"sign-in as {user[0]} refused: {refusal}")
