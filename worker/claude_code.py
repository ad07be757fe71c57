"""Run one prompt through Claude Code (claude-agent-sdk) and turn its messages into our events.

`run_claude` is the single place that talks to the SDK: it builds the options from a `RunSpec`,
launches the CLI through the isolation shim (see sandbox.py), enforces the wall-clock and idle
timeouts, maps every SDK message to a Taskdeck event (app/events.py) and reports the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.events import (
    ApiRetryEvent,
    ErrorEvent,
    Event,
    InitEvent,
    ProgressEvent,
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
from worker import sandbox

STDERR_LINE_LIMIT = 2_000
MAX_STDERR_EVENTS = 200


class RunSpec(BaseModel):
    """Everything needed to run one prompt: the STDIO wrapper's input and the job's plan."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    cwd: str
    model: str | None = None
    max_turns: int = Field(default=20, ge=1, le=1000)
    allowed_tools: list[str] = []
    disallowed_tools: list[str] = []
    permission_mode: str = "acceptEdits"
    system_prompt_append: str | None = None
    resume: str | None = None
    timeout_s: float = Field(default=3600, gt=0)
    idle_timeout_s: float = Field(default=600, gt=0)
    env: dict[str, str] = {}
    env_allowlist: list[str] | None = None
    config_dir: str | None = None
    pid_file: str | None = None
    include_partial: bool = True
    rlimit_cpu_s: int | None = None
    rlimit_as_bytes: int | None = None


@dataclass
class RunOutcome:
    """How a run ended: the result event if the CLI gave one, else the runner error."""

    result: ResultEvent | None = None
    error: ErrorEvent | None = None
    session_id: str | None = None
    pgid: int | None = None
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.result.is_error and self.error is None


class EventMapper:
    """Turns SDK messages into Taskdeck events, keeping the turn count for progress."""

    def __init__(self, attempt: int, max_turns: int) -> None:
        self.attempt = attempt
        self.max_turns = max_turns
        self.turns = 0
        self._seen_message_ids: set[str] = set()

    def map(self, message: Any) -> list[Event]:
        """The events one SDK message stands for (never raises on an unknown message)."""
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
            return [RawEvent(attempt=a, data={"kind": "system", "subtype": message.subtype, **data})]
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
            return [
                ResultEvent(
                    attempt=a,
                    is_error=bool(message.is_error),
                    subtype=message.subtype,
                    text=message.result,
                    cost_usd=float(message.total_cost_usd or 0.0),
                    input_tokens=int(usage.get("input_tokens") or 0),
                    output_tokens=int(usage.get("output_tokens") or 0),
                    cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
                    cache_creation_tokens=int(usage.get("cache_creation_input_tokens") or 0),
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


def build_options(spec: RunSpec, pid_file: Path, stderr: Callable[[str], None]):
    """The claude-agent-sdk options of a spec (the CLI is launched through the shim)."""
    from claude_agent_sdk import ClaudeAgentOptions

    return ClaudeAgentOptions(
        cwd=spec.cwd,
        model=spec.model,
        max_turns=spec.max_turns,
        permission_mode=spec.permission_mode,  # type: ignore[arg-type]
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


def launch_env(spec: RunSpec, pid_file: Path) -> dict[str, str]:
    """The claude process's environment for a spec."""
    extra = dict(spec.env)
    extra["TASKDECK_PID_FILE"] = str(pid_file)
    if spec.config_dir:
        extra["CLAUDE_CONFIG_DIR"] = spec.config_dir
        extra.setdefault("HOME", spec.config_dir)
    if spec.rlimit_cpu_s:
        extra["TASKDECK_RLIMIT_CPU"] = str(spec.rlimit_cpu_s)
    if spec.rlimit_as_bytes:
        extra["TASKDECK_RLIMIT_AS"] = str(spec.rlimit_as_bytes)
    return sandbox.child_env(extra, spec.env_allowlist)


async def run_claude(spec: RunSpec, emit: Callable[[Event], None], attempt: int = 1) -> RunOutcome:
    """Run `spec` to the end, calling `emit` for every event; never raises for a failed run."""
    from claude_agent_sdk import ClaudeSDKError, CLINotFoundError, ProcessError, query

    outcome = RunOutcome()
    mapper = EventMapper(attempt, spec.max_turns)
    stderr_events = 0

    def on_stderr(line: str) -> None:
        nonlocal stderr_events
        line = line.rstrip()[:STDERR_LINE_LIMIT]
        if not line:
            return
        outcome.stderr_tail = (outcome.stderr_tail + [line])[-20:]
        if stderr_events < MAX_STDERR_EVENTS:
            stderr_events += 1
            emit(StderrEvent(attempt=attempt, line=line))

    with tempfile.TemporaryDirectory(prefix="taskdeck-run-") as tmp:
        pid_file = Path(spec.pid_file) if spec.pid_file else Path(tmp) / "claude.pid"
        pid_file.unlink(missing_ok=True)
        options = build_options(spec, pid_file, on_stderr)
        env = launch_env(spec, pid_file)
        started = time.monotonic()
        stream = None
        try:
            with sandbox.scrubbed_environ(env):
                stream = query(prompt=spec.prompt, options=options)
                await _consume(stream, spec, mapper, emit, outcome, started)
        except TimeoutError as exc:
            kind = "idle_timeout" if "idle" in str(exc) else "timeout"
            outcome.error = ErrorEvent(attempt=attempt, kind=kind, message=str(exc))
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
                outcome.error = ErrorEvent(
                    attempt=attempt, kind="cli_failed", message=f"{type(exc).__name__}: {exc}"
                )
        finally:
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.aclose()
            outcome.pgid = sandbox.read_pid(pid_file)
            if outcome.pgid:
                await asyncio.to_thread(sandbox.kill_group, outcome.pgid, 1.0)
        if outcome.error is not None:
            emit(outcome.error)
    return outcome


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
