"""Run one prompt through Claude Code (claude-agent-sdk) and turn its messages into our events.

`run_claude` is the single place that talks to the SDK, used by the RQ job (worker/jobs.py) and
the STDIO wrapper (worker/wrapper.py) alike: it prepares the workspace (a directory, or a git
worktree of a repository, see workspace.py), builds the options from a `RunSpec`, launches the
CLI through the isolation shim (see sandbox.py), enforces the wall-clock and idle timeouts and the
output cap, maps every stream-json message to a Taskdeck event (app/events.py; messages it does
not know become raw events), captures the diff of a worktree, and reports the outcome. Whatever
happens (failure, timeout, cancellation), claude's whole process group is killed before it
returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.events import (
    ApiRetryEvent,
    DiffEvent,
    ErrorEvent,
    Event,
    InitEvent,
    ProgressEvent,
    PromptEvent,
    RawEvent,
    ResultEvent,
    StderrEvent,
    TextDeltaEvent,
    TextEvent,
    ThinkingEvent,
    ToolResultEvent,
    ToolUseEvent,
    truncate,
)
from app.schemas import local_path
from app.settings import get_settings
from worker import sandbox, workspace
from worker.usage import UsageTally, estimate_cost, run_cost

log = logging.getLogger(__name__)
STDERR_LINE_LIMIT = 2_000
MAX_STDERR_EVENTS = 200
# stream-json frames the SDK consumes itself (control protocol): never shown as raw events.
SDK_INTERNAL_TYPES = {
    "control_request",
    "control_response",
    "control_cancel_request",
    "transcript_mirror",
    "keep_alive",
}


class RunSpec(BaseModel):
    """Everything needed to run one prompt: the STDIO wrapper's input and the job's plan.

    The run happens in `cwd`, or in a git worktree of `repo` (branch `taskdeck/<workspace_id>`
    made from `base_ref`). Limits left as None take the settings' values; 0 turns a limit off.
    """

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="What Claude Code should do.")
    cwd: str | None = Field(default=None, description="An existing directory to work in.")
    repo: str | None = Field(default=None, description="A git repository to work in a worktree of.")
    base_ref: str | None = Field(default=None, description="Where the worktree starts (HEAD).")
    workspace_id: str | None = Field(
        default=None, description="Names the worktree and its branch (the task id; random if None)."
    )
    model: str | None = None
    max_turns: int = Field(default=20, ge=1, le=1000)
    allowed_tools: list[str] = []
    disallowed_tools: list[str] = []
    permission_mode: Literal["acceptEdits", "bypassPermissions", "default", "plan"] = "acceptEdits"
    system_prompt_append: str | None = None
    resume: str | None = Field(default=None, description="Claude session id to continue.")
    session_cost_usd: float = Field(
        default=0.0,
        ge=0,
        description="What the resumed session's earlier runs cost: the result's total counts "
        "on from it, and the run's own cost is what it adds.",
    )
    timeout_s: float = Field(default=3600, gt=0, description="Wall-clock limit of the run.")
    idle_timeout_s: float = Field(default=600, gt=0, description="Limit of silence from claude.")
    env: dict[str, str] = {}
    env_allowlist: list[str] | None = Field(
        default=None, description="Variables passed to claude besides its own (settings if None)."
    )
    config_dir: str | None = Field(default=None, description="CLAUDE_CONFIG_DIR of the run.")
    pid_file: str | None = None
    include_partial: bool = True
    rlimit_cpu_s: int | None = Field(default=None, ge=0)
    rlimit_as_bytes: int | None = Field(default=None, ge=0)
    max_output_bytes: int | None = Field(default=None, ge=1)

    @field_validator("cwd")
    @classmethod
    def _cwd_is_a_directory(cls, value: str | None) -> str | None:
        if value is not None:
            path = local_path(value)
            if not path.is_absolute():
                raise ValueError("the working directory must be an absolute path")
            if not path.is_dir():
                raise ValueError(f"the working directory {value} does not exist")
            return str(path)
        return value

    @field_validator("repo")
    @classmethod
    def _repo_is_git(cls, value: str | None) -> str | None:
        if value is not None:
            path = local_path(value)
            if not path.is_absolute() or not (path / ".git").exists():
                raise ValueError(f"{value} is not a git repository (an absolute path)")
            return str(path)
        return value

    @field_validator("workspace_id")
    @classmethod
    def _workspace_id_is_a_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("the workspace id may only have letters, digits, - and _")
        return value

    @model_validator(mode="after")
    def _one_place(self) -> RunSpec:
        problem = None
        if self.cwd and self.repo:
            problem = ("cwd", "give a working directory (cwd) or a repository (repo), not both")
        elif not self.cwd and not self.repo:
            problem = ("cwd", "give a working directory (cwd) or a repository (repo)")
        elif self.base_ref and not self.repo:
            problem = ("base_ref", "a base ref needs a repository (repo)")
        if problem:
            field_name, message = problem
            error = PydanticCustomError("workspace", message)
            value = getattr(self, field_name)
            details = InitErrorDetails(type=error, loc=(field_name,), input=value)
            raise ValidationError.from_exception_data("RunSpec", [details])
        return self


class OutputLimitExceeded(Exception):
    """claude wrote more stream output than the run may produce."""


@dataclass
class RunOutcome:
    """How a run ended: the result event if the CLI gave one, else the runner error."""

    result: ResultEvent | None = None
    error: ErrorEvent | None = None
    session_id: str | None = None
    pgid: int | None = None
    stderr_tail: list[str] = field(default_factory=list)
    cwd: str | None = None
    diff: workspace.Diff | None = None
    output_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.result.is_error and self.error is None

    @property
    def status(self) -> str:
        """succeeded, failed, timed_out or cancelled."""
        if self.ok:
            return "succeeded"
        if self.error is not None and self.error.kind in ("timeout", "idle_timeout"):
            return "timed_out"
        if self.error is not None and self.error.kind == "cancelled":
            return "cancelled"
        return "failed"


class EventMapper:
    """Turns SDK messages into Taskdeck events, keeping the turn count for progress and the
    running token usage (throttled usage events, from the raw stream events; see usage.py)."""

    def __init__(self, attempt: int, max_turns: int, session_cost_usd: float = 0.0) -> None:
        self.attempt = attempt
        self.max_turns = max_turns
        self.session_cost_usd = session_cost_usd  # a resumed session's cost before this run
        self.model: str | None = None  # from the init message
        self.turns = 0
        self._seen_message_ids: set[str] = set()
        self.usage = UsageTally(attempt)

    def map(self, message: Any) -> list[Event]:
        """The events one SDK message stands for (never raises on an unknown message); a usage
        update held back by the throttle goes out before them once it is due."""
        from claude_agent_sdk.types import StreamEvent

        if isinstance(message, StreamEvent):
            usage = self.usage.feed(message.event or {}, message.parent_tool_use_id)
        else:
            usage = self.usage.due()
        events = self._map(message)
        return [usage, *events] if usage is not None else events

    def _map(self, message: Any) -> list[Event]:
        from claude_agent_sdk import (
            AssistantMessage,
            ResultMessage,
            SystemMessage,
            TextBlock,
            ThinkingBlock,
            ToolResultBlock,
            ToolUseBlock,
            UserMessage,
        )
        from claude_agent_sdk.types import StreamEvent

        a = self.attempt
        if isinstance(message, SystemMessage):
            data = message.data or {}
            if message.subtype == "init":
                self.model = data.get("model")
                return [
                    InitEvent(
                        attempt=a,
                        session_id=data.get("session_id"),
                        model=data.get("model"),
                        tools=list(data.get("tools") or []),
                        cwd=data.get("cwd"),
                    )
                ]
            if message.subtype == "api_retry":
                return [
                    ApiRetryEvent(
                        attempt=a,
                        retry=int(data.get("attempt") or 0),
                        max_retries=int(data.get("max_retries") or 0),
                        delay_ms=int(data.get("retry_delay_ms") or 0),
                        error_status=data.get("error_status"),
                        error=str(data.get("error"))[:500] if data.get("error") else None,
                    )
                ]
            raw = {"kind": "system", "subtype": message.subtype, **data}
            return [RawEvent(attempt=a, data=_plain(raw))]
        if isinstance(message, AssistantMessage):
            if message.parent_tool_use_id is None:
                key = message.message_id or f"anon-{len(self._seen_message_ids)}"
                new_turn = key not in self._seen_message_ids
                self._seen_message_ids.add(key)
            else:
                new_turn = False
            events: list[Event] = []
            if new_turn:
                self.turns += 1
                events.append(ProgressEvent(attempt=a, turn=self.turns, max_turns=self.max_turns))
            for block in message.content:
                if isinstance(block, TextBlock):
                    events.append(TextEvent(attempt=a, text=block.text))
                elif isinstance(block, ThinkingBlock):
                    events.append(ThinkingEvent(attempt=a, text=block.thinking))
                elif isinstance(block, ToolUseBlock):
                    events.append(
                        ToolUseEvent(attempt=a, id=block.id, name=block.name, input=block.input)
                    )
                else:
                    events.append(RawEvent(attempt=a, data=_plain(block)))
            return events
        if isinstance(message, UserMessage):
            events = []
            content = message.content if isinstance(message.content, list) else []
            for block in content:
                if isinstance(block, ToolResultBlock):
                    output, cut = truncate(_tool_output(block.content))
                    events.append(
                        ToolResultEvent(
                            attempt=a,
                            tool_use_id=block.tool_use_id,
                            is_error=bool(block.is_error),
                            output=output,
                            truncated=cut,
                        )
                    )
            return events
        if isinstance(message, ResultMessage):
            usage = message.usage or {}
            tokens = {
                "input_tokens": int(usage.get("input_tokens") or 0),
                "output_tokens": int(usage.get("output_tokens") or 0),
                "cache_read_tokens": int(usage.get("cache_read_input_tokens") or 0),
                "cache_creation_tokens": int(usage.get("cache_creation_input_tokens") or 0),
            }
            cost = run_cost(
                float(message.total_cost_usd or 0.0),
                self.session_cost_usd,
                estimate_cost(self.model, tokens),
            )
            return [
                ResultEvent(
                    attempt=a,
                    is_error=bool(message.is_error),
                    subtype=message.subtype,
                    text=message.result,
                    cost_usd=cost,
                    **tokens,
                    num_turns=int(message.num_turns or 0),
                    duration_ms=int(message.duration_ms or 0),
                    session_id=message.session_id,
                    api_error_status=getattr(message, "api_error_status", None),
                )
            ]
        if isinstance(message, StreamEvent):
            raw = message.event or {}
            delta = raw.get("delta") or {}
            if raw.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
                return [TextDeltaEvent(attempt=a, text=delta.get("text", ""))]
            return []
        return [RawEvent(attempt=a, data={"kind": type(message).__name__, **_plain(message)})]


def _plain(value: Any) -> dict[str, Any]:
    """A JSON-able dict of an SDK object."""
    if is_dataclass(value):
        try:
            return {k: _jsonable(v) for k, v in asdict(value).items()}
        except TypeError:
            pass
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return {"repr": repr(value)[:2000]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return repr(value)[:2000]


def _tool_output(content: Any) -> str:
    """The text of a tool result's content (a string or a list of content blocks)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for item in content:
        if isinstance(item, dict) and item.get("type") == "text":
            parts.append(str(item.get("text", "")))
        else:
            parts.append(str(item))
    return "\n".join(parts)


def build_options(spec: RunSpec, cwd: str, stderr: Callable[[str], None]):
    """The claude-agent-sdk options of a spec (the CLI is launched through the shim)."""
    from claude_agent_sdk import ClaudeAgentOptions

    return ClaudeAgentOptions(
        cwd=cwd,
        model=spec.model,
        max_turns=spec.max_turns,
        permission_mode=spec.permission_mode,
        allowed_tools=spec.allowed_tools,
        disallowed_tools=spec.disallowed_tools,
        system_prompt={
            "type": "preset",
            "preset": "claude_code",
            **({"append": spec.system_prompt_append} if spec.system_prompt_append else {}),
        },
        resume=spec.resume,
        cli_path=str(sandbox.launch_shim(sandbox.claude_binary())),
        include_partial_messages=spec.include_partial,
        setting_sources=[],
        stderr=stderr,
    )


def launch_env(spec: RunSpec, pid_file: Path, home: Path) -> dict[str, str]:
    """The claude process's environment for a spec: the allow-list, the spec's own variables,
    the pid file and the rlimits for the shim (the settings' when the spec leaves them None).

    HOME is the config dir (or `home`), never the server user's: the Bash tool must not source
    the server's shell profile."""
    settings = get_settings()
    extra = dict(spec.env)
    extra["TASKDECK_PID_FILE"] = str(pid_file)
    if spec.config_dir:
        extra["CLAUDE_CONFIG_DIR"] = spec.config_dir
    extra.setdefault("HOME", spec.config_dir or str(home))
    cpu = settings.rlimit_cpu_s if spec.rlimit_cpu_s is None else spec.rlimit_cpu_s
    memory = settings.rlimit_as_mb * 2**20 if spec.rlimit_as_bytes is None else spec.rlimit_as_bytes
    if cpu:
        extra["TASKDECK_RLIMIT_CPU"] = str(cpu)
    if memory:
        extra["TASKDECK_RLIMIT_AS"] = str(memory)
    return sandbox.child_env(extra, spec.env_allowlist)


_spawn_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _spawn_lock() -> asyncio.Lock:
    """One lock per event loop: runs in one process swap os.environ one spawn at a time."""
    loop = asyncio.get_running_loop()
    lock = _spawn_locks.get(loop)
    if lock is None:
        lock = _spawn_locks[loop] = asyncio.Lock()
    return lock


def _tee_transport(
    prompt: str, options: Any, on_frame: Callable[[dict[str, Any]], bool], env: dict[str, str]
):
    """The SDK's subprocess transport, with every stream-json frame shown to `on_frame` first;
    a frame for which `on_frame` returns False is not passed on to the SDK. claude starts with
    exactly `env`: the SDK builds a child's environment from os.environ, so it is swapped for
    `env` while claude is spawned, one spawn at a time (runs side by side in one process would
    otherwise spawn with each other's environment, pid file included).

    It subclasses an SDK-internal class (checked with claude-agent-sdk 0.2.x). Should a later
    SDK move it, None is returned and the SDK's own transport runs the task: only the raw
    events of unknown frames and the output cap are lost, with a warning in the log.
    (A transport given to `query()` gets the options as they are: fine for ours, which use
    neither `can_use_tool` nor a session store.)"""
    try:
        from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
    except ImportError:
        log.warning("claude-agent-sdk has no SubprocessCLITransport: raw frames not teed")
        return None

    class TeeTransport(SubprocessCLITransport):
        async def connect(self) -> None:
            async with _spawn_lock():
                with sandbox.scrubbed_environ(env):
                    await super().connect()

        async def _frames(self) -> AsyncIterator[dict[str, Any]]:
            async for data in super().read_messages():
                if on_frame(data):
                    yield data

        def read_messages(self) -> AsyncIterator[dict[str, Any]]:
            return self._frames()

    return TeeTransport(prompt=prompt, options=options)


def _sdk_would_drop(data: dict[str, Any]) -> tuple[bool, bool]:
    """(unknown, breaks): whether the SDK skips this frame as an unknown type, and whether its
    parser would raise on it (a known type with a shape it does not expect)."""
    from claude_agent_sdk import ClaudeSDKError

    try:
        from claude_agent_sdk._internal.message_parser import parse_message
    except ImportError:
        return False, False

    if data.get("type") in SDK_INTERNAL_TYPES:
        return False, False
    try:
        return parse_message(data) is None, False
    except ClaudeSDKError:
        return True, True


async def run_claude(spec: RunSpec, emit: Callable[[Event], None], attempt: int = 1) -> RunOutcome:
    """Run `spec` to the end, calling `emit` for every event; never raises for a failed run.

    A cancelled run (the asyncio task cancelled, e.g. by the wrapper on SIGTERM) still kills
    claude's process group and returns, with an error of kind "cancelled".
    """
    from claude_agent_sdk import ClaudeSDKError, CLINotFoundError, ProcessError, query

    settings = get_settings()
    outcome = RunOutcome()
    mapper = EventMapper(attempt, spec.max_turns, spec.session_cost_usd if spec.resume else 0.0)
    stderr_events = 0
    max_output = spec.max_output_bytes or settings.max_output_mb * 2**20

    def on_stderr(line: str) -> None:
        nonlocal stderr_events
        line = line.rstrip()[:STDERR_LINE_LIMIT]
        if not line:
            return
        outcome.stderr_tail = (outcome.stderr_tail + [line])[-20:]
        if stderr_events < MAX_STDERR_EVENTS:
            stderr_events += 1
            emit(StderrEvent(attempt=attempt, line=line))

    def on_frame(data: dict[str, Any]) -> bool:
        outcome.output_bytes += len(json.dumps(data, ensure_ascii=False)) + 1
        if outcome.output_bytes > max_output:
            raise OutputLimitExceeded(
                f"claude wrote more than {max_output} bytes of output: the run was stopped"
            )
        unknown, breaks = _sdk_would_drop(data)
        if unknown:
            emit(RawEvent(attempt=attempt, data=_plain(data)))
        return not breaks

    emit(PromptEvent(attempt=attempt, text=spec.prompt, resume=spec.resume))
    binary = sandbox.claude_binary()
    if not os.access(binary, os.X_OK) or not Path(binary).is_file():
        # Checked here: behind the shim, the SDK would only see a process that exits at once.
        message = f"claude CLI not found (or not executable): {binary}"
        outcome.error = ErrorEvent(attempt=attempt, kind="cli_not_found", message=message)
        emit(outcome.error)
        return outcome
    try:
        cwd = prepare_cwd(spec)
    except workspace.WorkspaceError as exc:
        outcome.error = ErrorEvent(attempt=attempt, kind="workspace", message=str(exc))
        emit(outcome.error)
        return outcome
    outcome.cwd = cwd

    with tempfile.TemporaryDirectory(prefix="taskdeck-run-") as tmp:
        pid_file = Path(spec.pid_file) if spec.pid_file else Path(tmp) / "claude.pid"
        pid_file.unlink(missing_ok=True)
        options = build_options(spec, cwd, on_stderr)
        env = launch_env(spec, pid_file, Path(tmp))
        started = time.monotonic()
        stream = None
        try:
            transport = _tee_transport(spec.prompt, options, on_frame, env)
            # Without our transport, the SDK's spawns inside the whole run's scrubbed environ.
            scrubbed = contextlib.nullcontext() if transport else sandbox.scrubbed_environ(env)
            with scrubbed:
                stream = query(prompt=spec.prompt, options=options, transport=transport)
                await _consume(stream, spec, mapper, emit, outcome, started)
        except asyncio.CancelledError:
            outcome.error = ErrorEvent(attempt=attempt, kind="cancelled", message="run cancelled")
        except TimeoutError as exc:
            kind = "idle_timeout" if "idle" in str(exc) else "timeout"
            outcome.error = ErrorEvent(attempt=attempt, kind=kind, message=str(exc))
        except OutputLimitExceeded as exc:
            outcome.error = ErrorEvent(attempt=attempt, kind="output_limit", message=str(exc))
        except CLINotFoundError as exc:
            outcome.error = ErrorEvent(
                attempt=attempt, kind="cli_not_found", message=f"claude CLI not found: {exc}"
            )
        except ProcessError as exc:
            if outcome.result is None:
                tail = " | ".join(outcome.stderr_tail[-5:])
                message = f"claude exited with code {exc.exit_code}" + (f": {tail}" if tail else "")
                outcome.error = ErrorEvent(attempt=attempt, kind="cli_failed", message=message)
        except (ClaudeSDKError, OSError) as exc:
            if outcome.result is None:
                tail = " | ".join(outcome.stderr_tail[-5:])
                message = f"{type(exc).__name__}: {exc}" + (f": {tail}" if tail else "")
                outcome.error = ErrorEvent(attempt=attempt, kind="cli_failed", message=message)
        finally:
            # Shielded: a second cancel must not stop the cleanup half-way.
            await asyncio.shield(_close(stream, pid_file, outcome))
        if outcome.error is not None:
            emit(outcome.error)
    if spec.repo:
        _emit_diff(cwd, attempt, emit, outcome)
    return outcome


async def _close(stream: Any, pid_file: Path, outcome: RunOutcome) -> None:
    """Close the SDK stream, then kill what is left of claude's process group."""
    if stream is not None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(stream.aclose(), timeout=10)
    outcome.pgid = sandbox.read_pid(pid_file)
    await asyncio.to_thread(sandbox.kill_recorded_group, pid_file, 1.0)


def prepare_cwd(spec: RunSpec) -> str:
    """The directory the run happens in: the spec's cwd, or its worktree of the repository."""
    if spec.cwd:
        return spec.cwd
    workspace_id = spec.workspace_id or uuid.uuid4().hex[:12]
    return str(workspace.prepare_worktree(spec.repo, spec.base_ref, workspace_id))


def _emit_diff(cwd: str, attempt: int, emit: Callable[[Event], None], outcome: RunOutcome) -> None:
    """Capture and announce what the run changed in its worktree (never fails the run)."""
    try:
        diff = workspace.capture_diff(cwd)
    except workspace.WorkspaceError as exc:
        emit(ErrorEvent(attempt=attempt, kind="diff", message=str(exc)))
        return
    outcome.diff = diff
    branch = workspace.git(cwd, "rev-parse", "--abbrev-ref", "HEAD", check=False).strip()
    emit(
        DiffEvent(
            attempt=attempt,
            files_changed=diff.files_changed,
            lines_added=diff.lines_added,
            lines_removed=diff.lines_removed,
            files=diff.files[:500],
            branch=branch or None,
            base=diff.base,
            truncated=diff.truncated,
        )
    )


async def _consume(stream, spec, mapper, emit, outcome, started) -> None:  # noqa: ANN001
    """Read the SDK stream under the wall-clock and idle timeouts."""
    while True:
        remaining = spec.timeout_s - (time.monotonic() - started)
        if remaining <= 0:
            raise TimeoutError(f"wall-clock timeout: the run took longer than {spec.timeout_s:g} s")
        wait = min(remaining, spec.idle_timeout_s)
        try:
            message = await asyncio.wait_for(stream.__anext__(), timeout=wait)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if wait < remaining:
                raise TimeoutError(
                    f"idle timeout: no output from claude for {spec.idle_timeout_s:g} s"
                ) from None
            raise TimeoutError(
                f"wall-clock timeout: the run took longer than {spec.timeout_s:g} s"
            ) from None
        for event in mapper.map(message):
            if isinstance(event, InitEvent) and event.session_id:
                outcome.session_id = event.session_id
            if isinstance(event, ResultEvent):
                outcome.result = event
                outcome.session_id = event.session_id or outcome.session_id
            emit(event)
