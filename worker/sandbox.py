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
# Records "<pid> <start time>" (the start time tells a reused pid apart, see read_pid), then
# becomes claude: setsid (own session + process group), pdeathsig (dies with its parent), rlimits.
if [ -n "$TASKDECK_PID_FILE" ]; then
  _start() {{ _started=${{20}}; }}
  read -r _stat < /proc/$$/stat
  _start ${{_stat##*) }}
  echo "$$ $_started" > "$TASKDECK_PID_FILE"
fi
set -- "{binary}" "$@"
_limits=
[ -n "$TASKDECK_RLIMIT_AS" ] && _limits="--as=$TASKDECK_RLIMIT_AS"
[ -n "$TASKDECK_RLIMIT_CPU" ] && _limits="$_limits --cpu=$TASKDECK_RLIMIT_CPU"
[ -n "$_limits" ] && set -- prlimit $_limits -- "$@"
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


def child_env(
    extra: dict[str, str] | None = None, allow: list[str] | None = None
) -> dict[str, str]:
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

    Process-wide: runs side by side in one process must take turns (claude_code._spawn_lock).
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


def process_start_time(pid: int) -> int | None:
    """The start time of a live process (clock ticks since boot, /proc/<pid>/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def read_pid(pid_file: Path) -> int | None:
    """The claude pid (= its process group id) the shim recorded, if killing its group is safe.

    Returns None when the file is missing or malformed, or when the pid now belongs to another
    process (the recorded start time differs): a stale pid file must never kill a stranger. When
    the leader is gone its pid cannot have been reused while members of its group live on (the
    kernel keeps a process group's id reserved), so the group id is still returned.
    """
    try:
        parts = pid_file.read_text().split()
        pid = int(parts[0])
        recorded = int(parts[1]) if len(parts) > 1 else None
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 1:
        return None
    current = process_start_time(pid)
    if current is not None and current != recorded:
        return None  # the pid was reused by someone else
    return pid


def group_members(pgid: int) -> list[int]:
    """Pids of the live processes in process group `pgid` (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[0] != "Z" and fields[2] == str(pgid):
            members.append(int(entry.name))
    return members


def kill_group(pgid: int, grace_s: float = 2.0) -> None:
    """SIGTERM a process group, then SIGKILL what is left after `grace_s`."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_recorded_group(pid_file: Path, grace_s: float = 2.0) -> int | None:
    """Kill the group recorded in `pid_file` if that is safe (see read_pid), then remove the
    file; returns the group id that was signalled, if any."""
    pgid = read_pid(pid_file)
    if pgid:
        kill_group(pgid, grace_s)
    pid_file.unlink(missing_ok=True)
    return pgid


def processes_using(path: Path | str) -> list[int]:
    """Pids of live processes working inside `path` (their cwd) or carrying it in their
    environment (e.g. the pid file of a run): how to find a task's leftovers, tools included."""
    marker = str(Path(path).resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            if state == "Z":
                continue
            cwd = os.readlink(entry / "cwd")
            environ = (entry / "environ").read_bytes()
        except (OSError, IndexError):
            continue
        if cwd == marker or cwd.startswith(marker + "/") or marker.encode() in environ:
            found.append(int(entry.name))
    return found
