"""`make run`: start the whole local stack and stop it cleanly on Ctrl-C.

Starts a redis-server when none answers at TASKDECK_REDIS_URL (data under .taskdeck/redis),
upgrades the database, starts the scripted demo model when no ANTHROPIC_API_KEY is set (demo
mode), the RQ worker pool and the Reflex app (production build, one port), then prints the URL.
Every child runs in its own process group, so stopping kills each whole tree.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from redis import Redis

from app.settings import DATA_DIR, PROJECT_ROOT, get_settings

VENV_BIN = Path(sys.executable).parent


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path`, readable and writable by this user only (mode 0600 from the
    start, not chmod-ed after); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    return path


def say(message: str) -> None:
    print(f"[taskdeck] {message}", flush=True)


def reflex_env(base: dict[str, str]) -> dict[str, str]:
    """Environment every reflex command needs here (see shared NOTES: node from the venv, npm)."""
    env = dict(base)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("REFLEX_USE_NPM", "1")
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    env.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")
    if "NPM_CONFIG_REGISTRY" not in env:
        npm = shutil.which("npm", path=env["PATH"])
        if npm:
            registry = subprocess.run(
                [npm, "config", "get", "registry"],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            ).stdout.strip()
            if registry:
                env["NPM_CONFIG_REGISTRY"] = registry
    return env


def redis_answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


class Stack:
    """The child processes of one `make run`."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.env = dict(os.environ)

    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, **kwargs
    ) -> subprocess.Popen:  # noqa: ANN003
        process = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=env or self.env, start_new_session=True, **kwargs
        )
        self.children.append((name, process))
        return process

    def start_redis(self) -> None:
        url = get_settings().redis_url
        if redis_answers(url):
            say(f"Redis answers at {url}")
            return
        parsed = urlparse(url)
        if parsed.hostname not in ("127.0.0.1", "localhost", None):
            raise SystemExit(f"Redis does not answer at {url} and it is not local: start it first")
        binary = shutil.which("redis-server")
        if not binary:
            raise SystemExit("redis-server is missing: `make run` installs it (apt-get)")
        data = DATA_DIR / "redis"
        data.mkdir(parents=True, exist_ok=True)
        port = str(parsed.port or 6379)
        self.spawn(
            "redis",
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                port,
                "--dir",
                str(data),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(url):
            if time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start on port {port}")
            time.sleep(0.1)
        say(f"started redis-server on port {port} (data in {data})")

    def first_admin(self) -> None:
        """On a database without accounts, create the admin `admin` so the UI can be used:
        password from TASKDECK_ADMIN_PASSWORD, or a random one written to a file only its owner
        reads (TASKDECK_ADMIN_PASSWORD_FILE): never to the output, which ends up in logs."""
        from app import auth

        if auth.count_users():
            return
        password = os.environ.get("TASKDECK_ADMIN_PASSWORD")
        if password:
            auth.create_user("admin", password, "admin")
            say(
                "first start: created the admin account 'admin' (password from "
                "TASKDECK_ADMIN_PASSWORD)"
            )
            return
        # The file first: an account whose password was never written anywhere locks out.
        password = secrets.token_urlsafe(12)
        path = write_private(get_settings().admin_password_file, password + "\n")
        auth.create_user("admin", password, "admin")
        say(
            f"first start: created the admin account 'admin'; its password is in {path} "
            "(readable by you only: sign in, then delete the file; more accounts: "
            "taskdeck user create NAME)"
        )

    def start_demo_model(self) -> None:
        if os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("TASKDECK_DEMO_MODE") == "false":
            say("ANTHROPIC_API_KEY is set: tasks run against the Claude API")
            return
        process = self.spawn(
            "demo-model",
            [sys.executable, "-m", "worker.demo_model", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit("the demo model did not start")
        self.env["TASKDECK_DEMO_MODE"] = "true"
        self.env["TASKDECK_DEMO_MODEL_URL"] = url
        say(
            "No ANTHROPIC_API_KEY set: starting in DEMO MODE. Tasks run against Taskdeck's "
            f"scripted demo model ({url}), not Claude. Set ANTHROPIC_API_KEY to use Claude."
        )

    def start(self) -> None:
        settings = get_settings()
        self.start_redis()
        from app.db import upgrade_database

        upgrade_database()
        say(f"database ready ({settings.database_url.split('://')[0]})")
        self.first_admin()
        self.start_demo_model()
        self.spawn("workers", [sys.executable, "-m", "worker"])
        port = str(settings.port)
        self.spawn(
            "web",
            [
                str(VENV_BIN / "reflex"),
                "run",
                "--env",
                "prod",
                "--frontend-port",
                port,
                "--loglevel",
                "warning",
            ],
            env=reflex_env(self.env),
        )
        url = f"http://127.0.0.1:{port}"
        say(f"building and starting the web app on {url} ...")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.dead_child():
                return
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2):
                    break
            except Exception:
                time.sleep(0.5)
        say(f"Taskdeck is running: open {url}   (Ctrl-C stops everything)")

    def dead_child(self) -> str | None:
        for name, process in self.children:
            if process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        """Stop the children newest first, each whole process group, waiting for each in turn
        (workers hand back their jobs while Redis is still up)."""
        for name, process in reversed(self.children):
            if process.poll() is not None:
                continue
            # Workers let a running task finish for up to the grace period, then hand it back.
            patience = get_settings().shutdown_grace_s + 15 if name == "workers" else 20
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(patience)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            except ProcessLookupError:
                pass
        say("stopped")


def main() -> None:
    stack = Stack()
    stopping = False

    def on_signal(_signum, _frame) -> None:  # noqa: ANN001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        while not stopping:
            dead = stack.dead_child()
            if dead:
                say(f"{dead} exited: stopping the stack")
                break
            time.sleep(0.5)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
