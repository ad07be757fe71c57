"""The `taskdeck` command: first admin on a fresh database, then the API client against the API
served by a real HTTP server (uvicorn on a free port), with a real worker running the task."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import auth
from tests.conftest import free_port, wait_until

TASKDECK = str(Path(sys.executable).parent / "taskdeck")


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [TASKDECK, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env},
    )


@pytest.fixture
def served_api(env) -> Iterator[str]:
    """create_api() behind uvicorn on 127.0.0.1 (a real socket, real HTTP, real SSE)."""
    import httpx
    import uvicorn

    from app.api import create_api

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_api(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/api/v1/health/live", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, 20, message="uvicorn")
    yield url
    server.should_exit = True
    thread.join(10)


def test_user_create_makes_the_first_admin_and_refuses_bad_input(env):
    made = run(["user", "create", "boss", "--password-stdin"], env, "a long passphrase\n")
    assert made.returncode == 0, made.stderr
    assert "created admin 'boss'" in made.stdout
    assert "a long passphrase" not in made.stdout + made.stderr
    assert auth.authenticate("boss", "a long passphrase").role == "admin"

    again = run(["user", "create", "boss", "--password-stdin"], env, "another passphrase\n")
    assert again.returncode == 2 and "username: the username 'boss' is taken" in again.stderr
    short = run(["user", "create", "kid", "--role", "viewer", "--password-stdin"], env, "abc\n")
    assert short.returncode == 2 and "password: the password needs at least 8" in short.stderr
    listed = run(["user", "list"], env)
    assert "boss" in listed.stdout and "kid" not in listed.stdout


def test_submit_follow_list_and_cancel_through_the_api(env, served_api, worker_pool, tmp_path):
    run(["user", "create", "ci-bot", "--role", "member", "--password-stdin"], env, "passphrase!\n")
    minted = run(["token", "create", "ci-bot", "--name", "ci"], env)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert token.startswith("tdk_") and "shown once" in minted.stderr
    client_env = {**env, "TASKDECK_API_URL": served_api, "TASKDECK_TOKEN": token}

    project = tmp_path / "project"
    project.mkdir()
    submitted = run(
        ["submit", "Write hello.txt [scenario:write]", "--cwd", str(project), "--follow"],
        client_env,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    out = submitted.stdout
    assert out.splitlines()[0].startswith("task 1 queued")
    for line in (
        "[queued]",
        "[running]",
        "-> Write",
        "<- ok",
        "result: done",
        "[succeeded]",
        "task 1 succeeded",
    ):
        assert line in out, out
    assert out.index("[running]") < out.index("-> Write") < out.index("[succeeded]")
    assert (project / "hello.txt").exists()
    assert token not in out

    slow = run(["submit", "Wait [scenario:slow] [delay:30]"], client_env)
    assert slow.returncode == 0 and slow.stdout.startswith("task 2 queued")
    listed = run(["list"], client_env)
    assert listed.returncode == 0
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert [(r[0], r[1]) for r in rows][1] == ("1", "succeeded")
    cancelled = run(["cancel", "2"], client_env)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == "task 2 cancelled"
    wait_until(lambda: "cancelled" in run(["list", "--status", "cancelled"], client_env).stdout)
    followed = run(["follow", "2"], client_env)
    assert followed.returncode == 1 and "task 2 cancelled" in followed.stdout


def test_client_errors_are_one_line_with_an_exit_code(env, served_api):
    assert run(["list"], {**env, "TASKDECK_TOKEN": ""}).returncode == 2
    bad = run(["list"], {**env, "TASKDECK_API_URL": served_api, "TASKDECK_TOKEN": "tdk_wrong"})
    assert bad.returncode == 3
    assert bad.stderr.startswith("taskdeck: 401: not authenticated")
    user = auth.create_user("watcher", "passphrase!", "viewer")
    secret, _ = auth.create_token(user, "look only")
    viewer_env = {**env, "TASKDECK_API_URL": served_api, "TASKDECK_TOKEN": secret}
    refused = run(["submit", "hello"], viewer_env)
    assert refused.returncode == 3 and "403: this needs the 'write' permission" in refused.stderr
    auth.update_user(user.id, role="member")  # its read-only token stays read-only
    assert run(["submit", "hello"], viewer_env).returncode == 3
    secret, _ = auth.create_token(auth.get_user(user.id), "now a member")
    invalid = run(["submit", "   "], {**viewer_env, "TASKDECK_TOKEN": secret})
    assert invalid.returncode == 2 and "prompt: the prompt is empty" in invalid.stderr
    nowhere = run(["list"], {**viewer_env, "TASKDECK_API_URL": f"http://127.0.0.1:{free_port()}"})
    assert nowhere.returncode == 3 and "cannot reach the API" in nowhere.stderr
