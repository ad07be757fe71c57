"""`python -m worker.wrapper`: one JSON spec on stdin, one JSON event per line on stdout, exit
codes for succeeded / failed / timed out / cancelled / bad spec (real CLI, scripted model)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.events import parse_event
from tests.conftest import ROOT, wait_until
from worker import sandbox, warm_runner
from worker.wrapper import EXIT_BAD_SPEC, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT


class Wrapper:
    """The wrapper as a child process, its stdout read line by line."""

    def __init__(self, spec: dict | str, extra_env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.wrapper"],
            cwd=ROOT,
            env={**os.environ, **(extra_env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.process.stdin.write(spec if isinstance(spec, str) else json.dumps(spec))
        self.process.stdin.close()
        self.process.stdin = None  # sent: communicate() must not flush it again
        self.events = []

    def read_until(self, kind: str, timeout: float = 60):
        """Read events until one of type `kind` arrives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.events.append(parse_event(line))
            if self.events[-1].type == kind:
                return self.events[-1]
        raise AssertionError(f"no {kind} event; got {[e.type for e in self.events]}")

    def finish(self, timeout: float = 90) -> int:
        out, err = self.process.communicate(timeout=timeout)
        self.stderr = err
        self.events += [parse_event(line) for line in out.splitlines()]
        return self.process.returncode

    def of(self, kind: str) -> list:
        return [e for e in self.events if e.type == kind]


def run_wrapper(spec: dict | str, timeout: float = 90) -> tuple[int, Wrapper]:
    wrapper = Wrapper(spec)
    return wrapper.finish(timeout), wrapper


def no_processes_left(path: Path) -> bool:
    return not sandbox.processes_using(path)


def start_warm_runner() -> int:
    """Start the warm runner of this code (as a wrapper call that finds none does); its pid."""
    path = warm_runner.socket_path()
    warm_runner.start_runner(path)
    pid_file = Path(path).with_suffix(".pid")
    wait_until(pid_file.exists, 60, message="the warm runner to listen")
    return int(pid_file.read_text())


def alive(pid: int) -> bool:
    """Whether `pid` runs (a runner started by this test process stays a zombie when done)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture(params=["warm", "cold"])
def wrapper_mode(request, monkeypatch) -> str:
    """Runs each test with the warm runner serving the wrapper, and with it turned off."""
    if request.param == "warm":
        start_warm_runner()
    else:
        monkeypatch.setenv("TASKDECK_WRAPPER_WARM", "0")
    return request.param


def test_a_run_prints_typed_events_line_by_line_and_exits_0(env, tmp_path):
    code, run = run_wrapper(
        {
            "prompt": "go [scenario:three_turns]",
            "cwd": str(tmp_path),
            "allowed_tools": ["Write", "Bash"],
            "max_turns": 5,
        }
    )
    assert code == EXIT_OK, run.stderr
    kinds = [e.type for e in run.events]
    assert kinds[0] == "prompt" and kinds[1] == "init"
    for kind in ("text_delta", "progress", "text", "tool_use", "tool_result", "result"):
        assert kind in kinds, kinds
    assert kinds[-1] == "status" and run.events[-1].status == "succeeded"
    assert [(p.turn, p.max_turns) for p in run.of("progress")] == [(1, 5), (2, 5), (3, 5)]
    assert [t.name for t in run.of("tool_use")] == ["Write", "Bash"]
    shown = run.of("tool_result")[1]
    assert shown.output == "three turns" and not shown.is_error
    result = run.of("result")[0]
    assert not result.is_error and result.num_turns == 3 and result.cost_usd > 0
    assert result.input_tokens > 0 and result.output_tokens > 0 and result.cache_read_tokens > 0
    assert result.session_id == run.of("init")[0].session_id
    assert "".join(d.text for d in run.of("text_delta")).endswith("contains: three turns")
    assert (tmp_path / "a.txt").read_text() == "three turns\n"
    assert no_processes_left(tmp_path)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("this is not json", None),
        ("[1, 2]", None),
        ({"cwd": "/tmp"}, "prompt"),
        ({"prompt": "", "cwd": "/tmp"}, "prompt"),
        ({"prompt": "x", "cwd": "/no/such/dir"}, "cwd"),
        ({"prompt": "x"}, "cwd"),
        ({"prompt": "x", "cwd": "/tmp", "repo": "/tmp"}, "repo"),
        ({"prompt": "x", "cwd": "/tmp", "max_turns": 0}, "max_turns"),
        ({"prompt": "x", "cwd": "/tmp", "timeout_s": -1}, "timeout_s"),
        ({"prompt": "x", "cwd": "/tmp", "permission_mode": "yolo"}, "permission_mode"),
        ({"prompt": "x", "cwd": "/tmp", "allowed_tools": "Bash"}, "allowed_tools"),
        ({"prompt": "x", "cwd": "/tmp", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_spec_gets_one_error_event_naming_the_field(env, spec, field):
    code, run = run_wrapper(spec)
    assert code == EXIT_BAD_SPEC
    assert len(run.events) == 1, run.events
    error = run.events[0]
    assert error.type == "error" and error.kind == "bad_spec"
    assert error.field == field
    if field:
        assert field in error.message


def test_an_api_error_exits_1_with_the_status(env, tmp_path):
    code, run = run_wrapper({"prompt": "x [scenario:error_401]", "cwd": str(tmp_path)})
    assert code == EXIT_FAILED
    result = run.of("result")[0]
    assert result.is_error and result.api_error_status == 401
    assert run.events[-1].status == "failed"
    assert no_processes_left(tmp_path)


def test_a_hung_model_hits_the_idle_timeout_exits_124_and_leaves_nothing(env, tmp_path):
    started = time.monotonic()
    code, run = run_wrapper(
        {"prompt": "x [scenario:hang]", "cwd": str(tmp_path), "idle_timeout_s": 3}
    )
    assert code == EXIT_TIMEOUT
    assert time.monotonic() - started < 40  # the CLI alone would wait 5 minutes
    assert run.of("error")[0].kind == "idle_timeout"
    assert run.events[-1].status == "timed_out"
    assert no_processes_left(tmp_path)


def test_the_wall_clock_timeout_exits_124(env, tmp_path):
    code, run = run_wrapper(
        {
            "prompt": "x [scenario:slow] [delay:0.5]",
            "cwd": str(tmp_path),
            "timeout_s": 3,
            "idle_timeout_s": 30,
        }
    )
    assert code == EXIT_TIMEOUT
    assert run.of("error")[0].kind == "timeout"
    assert run.of("text_delta")  # it was streaming when the clock ran out
    assert no_processes_left(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_mid_stream_kills_claude_and_exits_130(
    env, tmp_path, signum, wrapper_mode
):
    pid_file = tmp_path / "claude.pid"
    wrapper = Wrapper(
        {"prompt": "x [scenario:slow] [delay:0.3]", "cwd": str(tmp_path), "pid_file": str(pid_file)}
    )
    wrapper.read_until("text_delta")
    claude_pid = sandbox.read_pid(pid_file)
    assert claude_pid and Path(f"/proc/{claude_pid}").exists()
    wrapper.process.send_signal(signum)
    code = wrapper.finish(timeout=30)
    assert code == EXIT_CANCELLED
    assert wrapper.of("error")[0].kind == "cancelled"
    assert wrapper.events[-1].type == "status" and wrapper.events[-1].status == "cancelled"
    assert not wrapper.of("result")
    assert no_processes_left(tmp_path)
    assert not sandbox.group_members(claude_pid)


def test_resume_continues_the_session_in_a_later_run(env, tmp_path):
    config = tmp_path / "config"
    first_code, first = run_wrapper(
        {"prompt": "go [scenario:write]", "cwd": str(tmp_path), "config_dir": str(config)}
    )
    session = first.of("init")[0].session_id
    second_code, second = run_wrapper(
        {
            "prompt": "and now [scenario:text]",
            "cwd": str(tmp_path),
            "config_dir": str(config),
            "resume": session,
        }
    )
    assert (first_code, second_code) == (EXIT_OK, EXIT_OK)
    assert second.of("init")[0].session_id == session
    assert second.of("result")[0].session_id == session
    assert second.of("prompt")[0].resume == session


def test_closing_stdout_cancels_the_run(env, tmp_path, wrapper_mode):
    wrapper = Wrapper({"prompt": "x [scenario:slow] [delay:0.3]", "cwd": str(tmp_path)})
    wrapper.read_until("text_delta")
    wrapper.process.stdout.close()
    assert wrapper.process.wait(30) == EXIT_CANCELLED
    wait_until(lambda: no_processes_left(tmp_path), 10, message="claude to be gone")


def test_repeated_signals_still_end_in_one_clean_cancel(env, tmp_path, wrapper_mode):
    wrapper = Wrapper({"prompt": "x [scenario:slow] [delay:0.3]", "cwd": str(tmp_path)})
    wrapper.read_until("text_delta")
    for _ in range(3):
        wrapper.process.send_signal(signal.SIGTERM)
    wrapper.process.send_signal(signal.SIGINT)
    assert wrapper.finish(timeout=30) == EXIT_CANCELLED
    assert "Traceback" not in wrapper.stderr
    assert [e.status for e in wrapper.of("status")] == ["cancelled"]
    assert no_processes_left(tmp_path)


def test_later_calls_are_served_by_a_child_of_the_warm_runner(env, tmp_path):
    runner = start_warm_runner()
    pid_file = tmp_path / "claude.pid"
    wrapper = Wrapper(
        {"prompt": "x [scenario:slow] [delay:0.1]", "cwd": str(tmp_path), "pid_file": str(pid_file)}
    )
    wrapper.read_until("text_delta")
    child = parent_of(sandbox.read_pid(pid_file))
    assert child != wrapper.process.pid and parent_of(child) == runner
    assert wrapper.finish() == EXIT_OK, wrapper.stderr
    assert [e.type for e in wrapper.events][-2:] == ["result", "status"]
    assert wrapper.events[-1].status == "succeeded"
    assert no_processes_left(tmp_path)
    wait_until(lambda: not alive(child), 10, message="the child to exit")


def test_without_the_warm_runner_claude_is_the_wrappers_own_child(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKDECK_WRAPPER_WARM", "0")
    pid_file = tmp_path / "claude.pid"
    wrapper = Wrapper(
        {"prompt": "x [scenario:slow] [delay:0.1]", "cwd": str(tmp_path), "pid_file": str(pid_file)}
    )
    wrapper.read_until("text_delta")
    assert parent_of(sandbox.read_pid(pid_file)) == wrapper.process.pid
    assert wrapper.finish() == EXIT_OK


def test_a_runner_killed_mid_run_is_reported_as_a_failed_run(env, tmp_path):
    start_warm_runner()
    pid_file = tmp_path / "claude.pid"
    wrapper = Wrapper(
        {"prompt": "x [scenario:slow] [delay:0.3]", "cwd": str(tmp_path), "pid_file": str(pid_file)}
    )
    wrapper.read_until("text_delta")
    os.kill(parent_of(sandbox.read_pid(pid_file)), signal.SIGKILL)  # the child running it
    assert wrapper.finish(30) == EXIT_FAILED
    assert wrapper.of("error")[-1].kind == "runner_lost"
    assert wrapper.events[-1].status == "failed"
    wait_until(lambda: no_processes_left(tmp_path), 10, message="claude to die with the child")


def test_an_idle_runner_exits_and_the_next_call_starts_another(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKDECK_RUNNER_DIR", str(tmp_path / "runners"))
    monkeypatch.setenv("TASKDECK_RUNNER_IDLE_S", "1")
    first = start_warm_runner()
    wait_until(lambda: not alive(first), 30, message="the idle runner to exit")
    assert not Path(warm_runner.socket_path()).exists()
    pid_file = Path(warm_runner.socket_path()).with_suffix(".pid")
    seen: set[int] = set()  # watched all along: the new runner may idle out before the call ends
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (done.is_set() and seen):
            with contextlib.suppress(OSError, ValueError):
                seen.add(int(pid_file.read_text()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    code, run = run_wrapper({"prompt": "x [scenario:text]", "cwd": str(tmp_path)})
    done.set()
    watcher.join()
    assert code == EXIT_OK and run.events[-1].status == "succeeded"  # run in-process meanwhile
    assert len(seen) == 1, "a new runner should have started"
    second = seen.pop()
    assert second != first
    wait_until(lambda: not alive(second), 30, message="it to idle out too")
