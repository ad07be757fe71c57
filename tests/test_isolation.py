"""Isolation of the claude process: its own session and group, rlimits, an allow-listed
environment, an output cap, and no process of a task left behind after cancel, timeout, or the
death of its wrapper or worker (checked by scanning /proc for the task's processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app import service
from app.schemas import TaskCreate
from tests.conftest import wait_for_status, wait_until
from tests.test_wrapper import Wrapper, wrapper_mode  # noqa: F401 - a fixture
from worker import sandbox
from worker.claude_code import RunSpec, run_claude
from worker.jobs import pid_file_for
from worker.wrapper import EXIT_FAILED


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def limits_of(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {line[:26].strip(): line[26:].split()[0] for line in lines}


@pytest.mark.usefixtures("wrapper_mode")
def test_claude_runs_in_its_own_session_with_rlimits_and_only_allowed_env(env, tmp_path):
    pid_file = tmp_path / "claude.pid"
    wrapper = Wrapper(
        {
            "prompt": "x [scenario:slow] [delay:0.2]",
            "cwd": str(tmp_path),
            "pid_file": str(pid_file),
            "rlimit_as_bytes": 3 * 2**30,
            "rlimit_cpu_s": 600,
        },
        extra_env={"SECRET_TOKEN": "s3cr3t", "TASKDECK_DEMO_SECRET": "nope"},
    )
    wrapper.read_until("text_delta")
    pid = sandbox.read_pid(pid_file)
    assert pid
    try:
        assert Path(f"/proc/{pid}/exe").resolve() == Path(sandbox.claude_binary()).resolve()
        assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # own group and session
        assert os.getpgid(pid) != os.getpgid(wrapper.process.pid)

        limits = limits_of(pid)
        assert limits["Max address space"] == str(3 * 2**30)
        assert limits["Max cpu time"] == "600"

        child_env = environ_of(pid)
        assert child_env["ANTHROPIC_API_KEY"] == "sk-test-key"  # the API key passes
        assert child_env["ANTHROPIC_BASE_URL"] == env["ANTHROPIC_BASE_URL"]
        for secret in (
            "SECRET_TOKEN",
            "TASKDECK_DATABASE_URL",
            "TASKDECK_REDIS_URL",
            "TASKDECK_DEMO_SECRET",
        ):
            assert secret not in child_env, secret
        assert not any(value == "s3cr3t" for value in child_env.values())
        assert "PATH" in child_env  # on the allow-list
    finally:
        wrapper.process.terminate()
        wrapper.finish(30)
    assert not sandbox.processes_using(tmp_path)


def test_the_settings_rlimits_apply_by_default(env, tmp_path, monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_RLIMIT_AS_MB", "2048")
    monkeypatch.setenv("TASKDECK_RLIMIT_CPU_S", "900")
    get_settings.cache_clear()
    pid_file = tmp_path / "claude.pid"
    wrapper = Wrapper(
        {"prompt": "x [scenario:slow]", "cwd": str(tmp_path), "pid_file": str(pid_file)}
    )
    wrapper.read_until("text_delta")
    limits = limits_of(sandbox.read_pid(pid_file))
    assert limits["Max address space"] == str(2048 * 2**20)
    assert limits["Max cpu time"] == "900"
    assert wrapper.finish(60) == 0  # the CLI runs fine under these limits


@pytest.mark.usefixtures("wrapper_mode")
def test_a_sigkilled_wrapper_takes_claude_with_it(env, tmp_path):
    pid_file = tmp_path / "claude.pid"
    wrapper = Wrapper(
        {"prompt": "x [scenario:slow] [delay:0.3]", "cwd": str(tmp_path), "pid_file": str(pid_file)}
    )
    wrapper.read_until("text_delta")
    pid = sandbox.read_pid(pid_file)
    assert sandbox.group_members(pid)
    wrapper.process.kill()
    wrapper.process.wait(10)
    wait_until(lambda: not sandbox.processes_using(tmp_path), 10, message="claude to die")
    wait_until(lambda: not sandbox.group_members(pid), 10, message="its group to be empty")


def test_the_output_cap_stops_the_run_and_kills_claude(env, tmp_path):
    wrapper = Wrapper(
        {
            "prompt": "go [scenario:three_turns]",
            "cwd": str(tmp_path),
            "max_output_bytes": 3000,
            "allowed_tools": ["Write", "Bash"],
        }
    )
    assert wrapper.finish(60) == EXIT_FAILED
    error = wrapper.of("error")[0]
    assert error.kind == "output_limit" and "3000 bytes" in error.message
    assert not wrapper.of("result")
    assert not sandbox.processes_using(tmp_path)


def test_a_stale_pid_file_never_kills_a_stranger(tmp_path):
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        started = sandbox.process_start_time(stranger.pid)
        pid_file = tmp_path / "claude.pid"
        # A pid file left by an earlier claude whose pid now belongs to `stranger`.
        pid_file.write_text(f"{stranger.pid} {started - 1}\n")
        assert sandbox.read_pid(pid_file) is None
        assert sandbox.kill_recorded_group(pid_file) is None
        assert stranger.poll() is None and not pid_file.exists()
        for junk in ("", "abc", "1 2", "0 5"):
            pid_file.write_text(junk)
            assert sandbox.read_pid(pid_file) is None
        # The same pid with its own start time is the group we started: it is killed.
        pid_file.write_text(f"{stranger.pid} {started}\n")
        assert sandbox.kill_recorded_group(pid_file, grace_s=5) == stranger.pid
        assert stranger.wait(5) == -signal.SIGTERM
    finally:
        if stranger.poll() is None:
            stranger.kill()


def test_a_timeout_kills_the_whole_group(env, tmp_path):
    pid_file = tmp_path / "claude.pid"
    spec = RunSpec(
        prompt="x [scenario:hang]", cwd=str(tmp_path), idle_timeout_s=4, pid_file=str(pid_file)
    )
    outcome = asyncio.run(run_claude(spec, lambda event: None))
    assert outcome.error.kind == "idle_timeout"
    assert outcome.pgid  # the group it killed, read from the pid file before the kill
    assert not sandbox.group_members(outcome.pgid)
    assert not sandbox.processes_using(tmp_path)
    assert not pid_file.exists()


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])


def _running_claude_of(task_id: int) -> int:
    def found():
        pid = sandbox.read_pid(pid_file_for(task_id))
        return pid if pid and sandbox.group_members(pid) else None

    return wait_until(found, 60, message="the task's claude process")


def test_cancel_of_a_running_task_leaves_no_process(env, worker_pool, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    task = service.create_task(
        TaskCreate(prompt="x [scenario:slow] [delay:0.5]", cwd=str(project), max_attempts=1)
    )
    pid = _running_claude_of(task.id)
    wait_until(lambda: any(e.type == "init" for e in service.list_events(task.id)), 30)
    service.cancel_task(task.id)
    assert wait_for_status(task.id, ("cancelled",), 30).status == "cancelled"
    wait_until(lambda: not sandbox.processes_using(project), 15, message="no process left")
    wait_until(lambda: not sandbox.group_members(pid), 10, message="its group to be empty")


def test_claude_dies_with_a_sigkilled_worker(env, worker_pool, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    task = service.create_task(
        TaskCreate(prompt="x [scenario:slow] [delay:1]", cwd=str(project), max_attempts=1)
    )
    pid = _running_claude_of(task.id)
    horse = parent_of(pid)  # the RQ work horse running the job (its own process group)
    assert horse != worker_pool.process.pid
    workers = _children_of(worker_pool.process.pid)
    assert workers
    # The pool supervisor and the work horse die at once, with no chance to clean up.
    os.killpg(worker_pool.process.pid, signal.SIGKILL)
    os.kill(horse, signal.SIGKILL)
    worker_pool.process.wait(10)
    wait_until(lambda: not sandbox.processes_using(project), 10, message="claude to die")
    wait_until(lambda: not sandbox.group_members(pid), 10, message="its group to be empty")
    # No worker outlives its pool (it would take later jobs with nobody supervising it).
    wait_until(lambda: not any(_alive(w) for w in workers), 30, message="the workers to exit")


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_tool_process_orphaned_by_a_killed_run_is_killed_through_the_pid_file(tmp_path):
    """claude dies with its worker (pdeathsig), but a tool it started does not: the pid file
    still names the group, and the worker-lost cleanup kills the orphan with it."""
    cli = tmp_path / "fake-claude"
    cli.write_text("#!/bin/sh\nsleep 300 &\necho started\nexec sleep 300\n")
    cli.chmod(0o755)
    shim = sandbox.launch_shim(str(cli), tmp_path)
    pid_file = tmp_path / "claude.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, time; subprocess.Popen([{str(shim)!r}]); time.sleep(300)",
        ],
        env={"PATH": os.environ["PATH"], "TASKDECK_PID_FILE": str(pid_file)},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout.readline().strip() == "started"
    pgid = sandbox.read_pid(pid_file)
    assert len(sandbox.group_members(pgid)) == 2  # the "claude" and its tool

    parent.kill()  # the worker is SIGKILLed
    parent.wait(5)
    wait_until(lambda: not Path(f"/proc/{pgid}").exists(), 10, message="claude to die")
    orphans = sandbox.group_members(pgid)
    assert len(orphans) == 1  # the tool lives on, re-parented, in claude's group

    assert sandbox.read_pid(pid_file) == pgid  # the leader is gone: its group id is still safe
    assert sandbox.kill_recorded_group(pid_file, grace_s=5) == pgid
    wait_until(lambda: not sandbox.group_members(pgid), 10, message="the orphan to die")
    assert not sandbox.processes_using(tmp_path)
