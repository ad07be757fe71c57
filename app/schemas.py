"""Pydantic contracts shared by the REST API and the UI: what goes in and what comes out."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

from app.settings import get_settings

T = TypeVar("T")
Priority = Literal["high", "default", "low"]
PermissionMode = Literal["acceptEdits", "bypassPermissions", "default", "plan"]
DEFAULT_TOOLS = ["Read", "Write", "Edit", "Glob", "Grep", "Bash"]
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-\[\]]{0,99}$")


def local_path(value: str) -> Path:
    """A path given by a user, `~` and `~name` expanded; an unknown `~name` is a ValueError."""
    try:
        return Path(value).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory"
        raise ValueError(f"{value}: no such user's home directory") from None


class TaskCreate(BaseModel):
    """A new task: what to ask Claude Code, where, and within which limits."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(description="What Claude Code should do.")
    cwd: str | None = Field(
        default=None, description="An existing directory to work in (default: a fresh one)."
    )
    repo: str | None = Field(
        default=None, description="A git repository: the task runs in its own worktree of it."
    )
    base_ref: str | None = Field(
        default=None, description="Branch or commit the worktree starts at."
    )
    model: str | None = Field(default=None, description="Model name (default from settings).")
    max_turns: int | None = Field(default=None, description="Most agent turns allowed.")
    priority: Priority = "default"
    permission_mode: PermissionMode = "acceptEdits"
    allowed_tools: list[str] = Field(default_factory=lambda: list(DEFAULT_TOOLS))
    timeout_s: int | None = Field(default=None, ge=5, le=24 * 3600)
    max_attempts: int | None = Field(default=None, ge=1, le=10)
    depends_on: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(  # INTEGER ids (PostgreSQL)
        default_factory=list,
        max_length=50,
        description="Ids of tasks that must succeed before this one starts.",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_present(cls, value: str) -> str:
        if not value:
            raise ValueError("the prompt is empty: say what Claude Code should do")
        if "\x00" in value:
            raise ValueError("the prompt contains a NUL character")
        limit = get_settings().max_prompt_chars
        if len(value) > limit:
            raise ValueError(f"the prompt is too long ({len(value)} characters, at most {limit})")
        return value

    @field_validator("cwd", "repo", "base_ref", "model")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        if value and "\x00" in value:
            raise ValueError("contains a NUL character")
        return value or None

    @field_validator("cwd")
    @classmethod
    def _cwd_exists(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = local_path(value)
        if not path.is_absolute():
            raise ValueError("the working directory must be an absolute path")
        if not path.is_dir():
            raise ValueError(f"the working directory {value} does not exist")
        return str(path)

    @field_validator("repo")
    @classmethod
    def _repo_is_git(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = local_path(value)
        if not (path / ".git").exists():
            raise ValueError(f"{value} is not a git repository")
        return str(path)

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        if value is not None and not MODEL_PATTERN.match(value):
            raise ValueError("the model name has characters a model name cannot have")
        return value

    @field_validator("max_turns")
    @classmethod
    def _turns_in_range(cls, value: int | None) -> int | None:
        limit = get_settings().max_turns_limit
        if value is not None and not 1 <= value <= limit:
            raise ValueError(f"max turns must be between 1 and {limit}")
        return value

    @field_validator("allowed_tools")
    @classmethod
    def _tool_names(cls, value: list[str]) -> list[str]:
        cleaned = [name.strip() for name in value if name.strip()]
        for name in cleaned:
            if not re.match(r"^[A-Za-z0-9_.:()*\-\s/]{1,100}$", name):
                raise ValueError(f"{name!r} is not a tool name")
        return cleaned

    @model_validator(mode="after")
    def _one_place(self) -> TaskCreate:
        if self.cwd and self.repo:
            raise ValueError("give a working directory or a repository, not both")
        if self.base_ref and not self.repo:
            raise ValueError("a base ref needs a repository")
        return self


class FollowUpCreate(BaseModel):
    """A new prompt that continues a finished task's Claude session."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str

    _prompt_present = field_validator("prompt")(TaskCreate._prompt_present.__func__)


class AttemptOut(BaseModel):
    """One run of a task."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    number: int
    kind: str
    prompt: str
    status: str
    reason: str | None
    worker: str | None
    started_at: datetime
    finished_at: datetime | None
    session_id: str | None
    cost_usd: float = Field(description="This attempt's own cost (not its session's so far).")
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    num_turns: int
    duration_ms: int


class TaskOut(BaseModel):
    """A task as the API and the UI show it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    prompt: str
    cwd: str | None
    repo: str | None
    base_ref: str | None
    model: str
    max_turns: int
    priority: str
    status: str
    status_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts_count: int
    max_attempts: int
    session_id: str | None
    workspace: str | None
    result_text: str | None
    cost_usd: float = Field(description="All attempts together (runs, retries, follow-ups).")
    input_tokens: int = Field(description="All attempts together, as the cost.")
    output_tokens: int = Field(description="All attempts together, as the cost.")
    cache_read_tokens: int = Field(description="All attempts together, as the cost.")
    cache_creation_tokens: int = Field(description="All attempts together, as the cost.")
    num_turns: int = Field(description="Turns of the latest attempt (max_turns limits each).")
    duration_ms: int = Field(description="How long the latest attempt ran, as Claude Code says.")
    files_changed: int
    lines_added: int
    lines_removed: int
    demo: bool


class TaskEventOut(BaseModel):
    """A stored event with its place in the task's stream."""

    stream_id: str
    attempt: int
    type: str
    ts: float
    data: dict[str, Any]


class Page(BaseModel, Generic[T]):
    """A page of results; `next_cursor` fetches the next one (None at the end)."""

    items: list[T]
    total: int | None = None
    next_cursor: str | None = None


# ----- accounts and tokens (issue 7) ----------------------------------------------------------

RoleName = Literal["admin", "member", "viewer"]
NO_NUL = r"^[^\x00]*$"  # text the databases can store (PostgreSQL refuses NUL characters)
Scope = Literal["read", "write", "admin"]


class LoginIn(BaseModel):
    """Credentials for a web session."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=256)


class UserCreate(BaseModel):
    """A new account (admins only)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: RoleName = "member"


class UserUpdate(BaseModel):
    """Changes to an account (admins only); absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256)


class UserOut(BaseModel):
    """An account as shown to admins and to its owner (never its password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class Me(BaseModel):
    """The caller: account, what they may do, and how they signed in."""

    user: UserOut
    scopes: list[str]
    via: str


class SessionOut(BaseModel):
    """A web session was opened (its secret travels only in the HttpOnly cookie)."""

    user: UserOut
    expires_at: datetime


class TokenCreate(BaseModel):
    """A new API token: a name to recognise it, its scopes (default: all the role allows)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    scopes: list[Scope] | None = Field(default=None, max_length=3)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(BaseModel):
    """An API token as listed: never the token itself, only its first characters."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    """A token just created: `token` is shown this once and cannot be read again."""

    token: str


class TaskSummary(BaseModel):
    """A task in a list: the columns a list shows (GET /tasks/{id} has everything)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    status: str
    priority: str
    model: str
    repo: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts_count: int
    num_turns: int
    cost_usd: float
    duration_ms: int


class WorkerOut(BaseModel):
    """One RQ worker process."""

    name: str
    state: str
    task_id: int | None
    job_id: str
    heartbeat_age_s: float | None
    memory_mb: float | None
    pid: int | None
    queues: list[str]
    successful: int
    failed: int


# ----- task engine: schedules, queues, dependencies (issue 5) ----------------------------------


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """The IANA time zone names zoneinfo knows (system tz database, else the tzdata package),
    without the host-specific `localtime` and the placeholder `Factory`."""
    from zoneinfo import available_timezones

    return frozenset(available_timezones() - {"localtime", "Factory"})


def check_timezone(value: str | None) -> str | None:
    """An IANA time zone name (Europe/Paris, America/New_York, UTC)."""
    if value is not None and value not in time_zones():
        raise ValueError(f"{value!r} is not an IANA time zone name (like Europe/Paris or UTC)")
    return value


def localize(value: datetime | None, timezone: str | None) -> datetime | None:
    """A time without an offset read in the schedule's time zone (UTC if none); others kept."""
    if value is None or value.tzinfo is not None:
        return value
    from zoneinfo import ZoneInfo

    return value.replace(tzinfo=ZoneInfo(timezone or "UTC"))


class ScheduleCreate(BaseModel):
    """A task to submit at a time (`run_at`) or on a cron expression (`cron`, 5 fields), both read
    in `timezone` (an IANA name, UTC by default; a `run_at` with an offset keeps its offset)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    task: TaskCreate
    run_at: datetime | None = None
    cron: str | None = Field(default=None, max_length=100)
    timezone: str = Field(
        default="UTC", max_length=64, description="IANA time zone of `cron` and `run_at`."
    )
    enabled: bool = True

    _timezone_known = field_validator("timezone")(check_timezone)

    @field_validator("cron")
    @classmethod
    def _cron_valid(cls, value: str | None) -> str | None:
        if not value:
            return None
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (5 fields: m h dom mon dow)")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleCreate:
        if bool(self.run_at) == bool(self.cron):
            raise ValueError("give either run_at (a time) or cron (an expression), not both")
        self.run_at = localize(self.run_at, self.timezone)
        return self


class ScheduleUpdate(BaseModel):
    """Changes to a schedule; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    task: TaskCreate | None = None
    run_at: datetime | None = None
    cron: str | None = Field(default=None, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)
    enabled: bool | None = None

    _cron_valid = field_validator("cron")(ScheduleCreate._cron_valid.__func__)
    _timezone_known = field_validator("timezone")(check_timezone)

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleUpdate:
        if self.run_at and self.cron:
            raise ValueError("give either run_at (a time) or cron (an expression), not both")
        return self


class ScheduleOut(BaseModel):
    """A schedule with its next and last run."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    template: dict[str, Any]
    run_at: datetime | None
    cron: str | None
    timezone: str
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_task_id: int | None
    runs_count: int
    created_at: datetime

    @computed_field
    @property
    def next_run_local(self) -> datetime | None:
        """`next_run_at` in the schedule's own time zone (what its cron reads)."""
        if self.next_run_at is None:
            return None
        from zoneinfo import ZoneInfo

        return localize(self.next_run_at, "UTC").astimezone(ZoneInfo(self.timezone))


class QueueControlOut(BaseModel):
    """A priority queue as the queues page shows it: jobs waiting, running, failed, paused."""

    name: str
    priority: str
    paused: bool
    queued: int
    running: int
    scheduled: int
    rate_limited: int
    failed_tasks: int


class BulkResult(BaseModel):
    """Outcome of a bulk action: the tasks it changed and why the others were left alone."""

    done: list[int] = Field(default_factory=list)
    skipped: dict[int, str] = Field(default_factory=dict)
