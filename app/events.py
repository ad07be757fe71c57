"""Taskdeck's own typed task events (pydantic), independent of the SDK's message classes.

Every event a task produces -- status changes, what Claude says and does, retries, the result --
is one of these models. Workers publish them to Redis and the database; the UI, the REST API and
the STDIO wrapper read them back through `parse_event`. docs/events.md shows an example of each.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

OUTPUT_LIMIT = 8_000  # characters of a tool result kept in an event


class BaseEvent(BaseModel):
    """Fields every event carries."""

    ts: float = Field(default_factory=time.time, description="Unix time the event was made.")
    attempt: int = Field(default=0, description="Attempt number (0 = not tied to one).")


class StatusEvent(BaseEvent):
    """The task's status changed (queued, running, succeeded, failed, cancelled)."""

    type: Literal["status"] = "status"
    status: str
    reason: str | None = None


class PromptEvent(BaseEvent):
    """The prompt an attempt sends (the first run, a retry or a follow-up): the user's side of
    the conversation, so a task's log reads as one conversation across attempts."""

    type: Literal["prompt"] = "prompt"
    text: str
    resume: str | None = Field(default=None, description="Session id continued, if any.")


class InitEvent(BaseEvent):
    """Claude Code started: its session, model and tools."""

    type: Literal["init"] = "init"
    session_id: str | None = None
    model: str | None = None
    tools: list[str] = []
    cwd: str | None = None


class TextEvent(BaseEvent):
    """A complete assistant text block (markdown)."""

    type: Literal["text"] = "text"
    text: str


class TextDeltaEvent(BaseEvent):
    """A piece of assistant text as it is typed (partial message streaming)."""

    type: Literal["text_delta"] = "text_delta"
    text: str


class ThinkingEvent(BaseEvent):
    """A thinking block."""

    type: Literal["thinking"] = "thinking"
    text: str


class ToolUseEvent(BaseEvent):
    """Claude called a tool."""

    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = {}


class ToolResultEvent(BaseEvent):
    """The result of a tool call (output truncated to OUTPUT_LIMIT characters)."""

    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    is_error: bool = False
    output: str = ""
    truncated: bool = False


class ApiRetryEvent(BaseEvent):
    """The CLI is retrying a failed API request by itself."""

    type: Literal["api_retry"] = "api_retry"
    retry: int = 0
    max_retries: int = 0
    delay_ms: int = 0
    error_status: int | None = None
    error: str | None = None


class ProgressEvent(BaseEvent):
    """Turn n of max: one per assistant turn."""

    type: Literal["progress"] = "progress"
    turn: int
    max_turns: int


class UsageEvent(BaseEvent):
    """Running usage of the attempt while Claude streams: the token counts so far (messages
    finished plus the one streaming) and an estimated cost. At most a few a second; the result
    event carries the final numbers."""

    type: Literal["usage"] = "usage"
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    cost_usd: float | None = Field(
        default=None,
        description="Estimated from the model's list price; None when a model's price is unknown.",
    )


class ResultEvent(BaseEvent):
    """The run ended: outcome, final text, cost and usage."""

    type: Literal["result"] = "result"
    is_error: bool
    subtype: str = "success"
    text: str | None = None
    cost_usd: float = Field(
        default=0.0,
        description="This run's own cost (a follow-up's CLI reports its session's so far: the "
        "earlier runs' share is taken off).",
    )
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    num_turns: int = 0
    duration_ms: int = 0
    session_id: str | None = None
    api_error_status: int | None = None


class StderrEvent(BaseEvent):
    """A line the claude process wrote on stderr."""

    type: Literal["stderr"] = "stderr"
    line: str


class DiffEvent(BaseEvent):
    """What the run changed in a git workspace."""

    type: Literal["diff"] = "diff"
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    files: list[str] = []
    branch: str | None = None
    base: str | None = Field(default=None, description="The commit the workspace started from.")
    truncated: bool = Field(default=False, description="The stored patch was cut.")


class ErrorEvent(BaseEvent):
    """The runner itself failed (CLI missing, timeout, crash, bad spec)."""

    type: Literal["error"] = "error"
    kind: str
    message: str
    field: str | None = None


class RawEvent(BaseEvent):
    """A message the runner does not know: kept as it came, never dropped."""

    type: Literal["raw"] = "raw"
    data: dict[str, Any] = {}


Event = Annotated[
    StatusEvent
    | PromptEvent
    | InitEvent
    | TextEvent
    | TextDeltaEvent
    | ThinkingEvent
    | ToolUseEvent
    | ToolResultEvent
    | ApiRetryEvent
    | ProgressEvent
    | UsageEvent
    | ResultEvent
    | StderrEvent
    | DiffEvent
    | ErrorEvent
    | RawEvent,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict) -> Event:
    """Build the typed event from its JSON text or dict."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)


def truncate(text: str, limit: int = OUTPUT_LIMIT) -> tuple[str, bool]:
    """Cut `text` to `limit` characters; say whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + f"\n... [{len(text) - limit} more characters]", True
