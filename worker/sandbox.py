"""Where and how a claude process runs: workspaces, the launch shim, the scrubbed environment.

The shim puts claude in its own session and process group (so cancel and timeout can kill the
whole group), makes the kernel kill it when its parent dies (PR_SET_PDEATHSIG, so a SIGKILLed
worker leaves no orphan), applies rlimits, and records its pid for the group kill.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import claude_agent_sdk

from app.settings import get_settings

CHILD_BASE_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1",
}
# Variables of the claude process itself that pass through when set in the worker's environment.
CLAUDE_PASSTHROUGH = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "CLAUDE_CODE_MAX_RETRIES",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "API_TIMEOUT_MS",
    "IS_SANDBOX",
)

SHIM_TEMPLATE = """#!/bin/sh
# Taskdeck launch shim for {binary}
[ -n "$TASKDECK_PID_FILE" ] && echo $$ > "$TASKDECK_PID_FILE"
set -- "{binary}" "$@"
[ -n "$TASKDECK_RLIMIT_AS" ] && set -- prlimit --as="$TASKDECK_RLIMIT_AS" -- "$@"
[ -n "$TASKDECK_RLIMIT_CPU" ] && set -- prlimit --cpu="$TASKDECK_RLIMIT_CPU" -- "$@"
exec setpriv --pdeathsig KILL -- setsid -- "$@"
"""


def bundled_claude() -> Path:
    """The Claude Code CLI binary shipped inside claude-agent-sdk."""
    return Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"


def claude_binary() -> str:
    """The configured claude CLI, or the bundled one."""
    return get_settings().claude_path or str(bundled_claude())


def launch_shim(binary: str, directory: Path | None = None) -> Path:
    """Write (once) and return the shim script that launches `binary` isolated."""
    directory = directory or get_settings().claude_config_root
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(binary.encode()).hexdigest()[:10]
    path = directory / f"claude-shim-{digest}.sh"
    text = SHIM_TEMPLATE.format(binary=binary.replace('"', '\\"'))
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.replace(path)
    return path


def child_env(extra: dict[str, str] | None = None, allow: list[str] | None = None) -> dict[str, str]:
    """The claude process's whole environment: an allow-list, never the server's secrets."""
    settings = get_settings()
    names = list(allow if allow is not None else settings.env_allowlist) + list(CLAUDE_PASSTHROUGH)
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.update(CHILD_BASE_ENV)
    if settings.demo_mode and settings.demo_model_url:
        env["ANTHROPIC_BASE_URL"] = settings.demo_model_url
        env.setdefault("ANTHROPIC_API_KEY", "demo-model-key")
    env.update(extra or {})
    return env


@contextlib.contextmanager
def scrubbed_environ(env: dict[str, str]) -> Iterator[None]:
    """Replace this process's environment while the SDK spawns claude (it inherits os.environ).

    Safe in the RQ work horse (a fork that runs one job) and in the STDIO wrapper process.
    """
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def task_workspace(task_id: int) -> Path:
    """A fresh directory for a task that named no working directory."""
    path = get_settings().workspace_root / f"task-{task_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir_for(task_id: int) -> Path:
    """CLAUDE_CONFIG_DIR of one task: its transcripts stay together so follow-ups can resume,
    and concurrent tasks never share (and contend for) one config directory."""
    path = get_settings().claude_config_root / f"task-{task_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_pid(pid_file: Path) -> int | None:
    """The claude pid (= its process group id) the shim recorded, if any."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def kill_group(pgid: int, grace_s: float = 2.0) -> None:
    """SIGTERM a process group, then SIGKILL what is left after `grace_s`."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
