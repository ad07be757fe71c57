"""Every Taskdeck knob, read from TASKDECK_* environment variables (and .env)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / ".taskdeck"


class Settings(BaseSettings):
    """Runtime configuration shared by the web app, the API and the workers."""

    model_config = SettingsConfigDict(env_prefix="TASKDECK_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DATA_DIR / 'taskdeck.db'}",
        description="SQLAlchemy URL of the database (SQLite by default, PostgreSQL by URL).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Redis for queue + events."
    )
    workspace_root: Path = Field(
        default=DATA_DIR / "workspaces", description="Per-task workspaces."
    )
    claude_config_root: Path = Field(
        default=DATA_DIR / "claude", description="Parent of each worker's CLAUDE_CONFIG_DIR."
    )
    admin_password_file: Path = Field(
        default=DATA_DIR / "admin-password",
        description="Where the first start writes the first admin's random password (mode 0600).",
    )
    claude_path: str | None = Field(
        default=None,
        description="Path of the claude CLI; the one bundled in claude-agent-sdk if unset.",
    )
    default_model: str = "claude-sonnet-4-5"
    max_turns_limit: int = Field(default=200, description="Upper bound accepted for max_turns.")
    default_max_turns: int = 20
    max_prompt_chars: int = 100_000
    task_timeout_s: int = Field(default=3600, description="Wall-clock limit of one attempt.")
    idle_timeout_s: int = Field(default=600, description="Kill an attempt silent for this long.")
    max_attempts: int = Field(default=3, description="Attempts per task, first one included.")
    retry_backoff_s: int = Field(
        default=15, ge=0, description="Wait before the first retry; it doubles for each next one."
    )
    retry_backoff_max_s: int = Field(default=600, ge=0, description="Longest wait between retries.")
    cli_max_retries: int = Field(
        default=2,
        ge=0,
        description="API retries the CLI makes inside one attempt (CLAUDE_CODE_MAX_RETRIES).",
    )
    workers: int = Field(default=2, description="Worker processes started by `python -m worker`.")
    worker_host: str | None = Field(
        default=None, description="Host part of worker names (host.pid); the hostname if unset."
    )
    shutdown_grace_s: int = Field(
        default=60,
        ge=0,
        description="On SIGTERM a worker lets its task run this long, then hands it back.",
    )
    global_concurrency: int = Field(
        default=0,
        ge=0,
        description="Most tasks running at once, all queues together (0 = no limit).",
    )
    repo_concurrency: int = Field(
        default=2, ge=0, description="Most tasks of one repository running at once (0 = no limit)."
    )
    worker_ttl_s: int = 30
    maintenance_interval_s: int = 5
    job_monitoring_interval_s: int = Field(default=5, description="Heartbeat of a running job.")
    heartbeat_grace_s: int = Field(
        default=10, description="A running job whose heartbeat is this late is abandoned."
    )
    task_lock_ttl_s: int = Field(default=20, description="Lease of the run of a task (refreshed).")
    reconcile_interval_s: int = Field(default=15, description="Seconds between reconciler passes.")
    schedule_tick_s: float = Field(default=2.0, description="Seconds between schedule checks.")
    stream_maxlen: int = Field(default=10_000, description="Events kept per task stream in Redis.")
    demo_mode: bool = Field(
        default=False, description="Run the CLI against the bundled scripted demo model."
    )
    demo_model_url: str | None = Field(default=None, description="URL of the running demo model.")
    port: int = 3000
    metrics_interval_s: int = Field(default=5, description="Seconds between metric samples.")
    metrics_retention_days: int = Field(default=14, description="Metric samples kept this long.")
    alert_failure_rate: float = Field(
        default=0.5, description="Alert when this share of the tasks finished in the window failed."
    )
    alert_failure_window_s: int = Field(default=3600, description="Window of the failure rate.")
    alert_failure_min_tasks: int = Field(default=5, description="Finished tasks before it counts.")
    alert_queue_wait_s: int = Field(default=600, description="Alert when a job waits this long.")
    alert_heartbeat_s: int = Field(default=60, description="Alert when a worker is this silent.")
    alert_min_workers: int = Field(default=1, description="Alert when fewer workers are alive.")
    alert_webhook_url: str | None = Field(
        default=None, description="POST each alert that fires or clears here (JSON)."
    )
    session_ttl_s: int = Field(default=12 * 3600, description="A web sign-in lasts this long.")
    api_rate_limit: int = Field(default=600, description="Requests per minute per token/session.")
    api_max_body_bytes: int = Field(default=1_048_576, description="Largest request body accepted.")
    login_rate_limit: int = Field(
        default=10, ge=1, description="Sign-in attempts a minute per client address (UI and API)."
    )
    api_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Threads the API's blocking work (database reads and writes) runs in.",
    )
    env_allowlist: list[str] = Field(
        default=["PATH", "LANG", "LC_ALL", "TZ", "TERM"],
        description="Variables passed through to the claude process besides its own.",
    )
    # Runner limits (worker/sandbox.py, worker/claude_code.py). The bundled CLI (a Bun binary)
    # crashes at start below ~1 GiB of address space; 4 GiB leaves room for node/python tools.
    rlimit_as_mb: int = Field(default=4096, ge=0, description="Address-space rlimit (0 = none).")
    rlimit_cpu_s: int = Field(default=3600, ge=0, description="CPU-time rlimit (0 = none).")
    max_output_mb: int = Field(
        default=64, ge=1, description="Most claude stream output one attempt may produce."
    )
    workspace_retention_h: int = Field(
        default=72, ge=0, description="Keep workspaces of succeeded/cancelled tasks this long."
    )
    failed_workspace_retention_h: int = Field(
        default=168, ge=0, description="Keep workspaces of failed tasks this long (to inspect)."
    )

    @property
    def anthropic_api_key(self) -> str | None:
        """The real API key, read from the standard variable (never logged)."""
        return os.environ.get("ANTHROPIC_API_KEY") or None

    @property
    def anthropic_base_url(self) -> str | None:
        """The Anthropic endpoint: the demo model in demo mode, else ANTHROPIC_BASE_URL if set."""
        if self.demo_mode:
            return self.demo_model_url
        return os.environ.get("ANTHROPIC_BASE_URL") or None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call `get_settings.cache_clear()`)."""
    return Settings()
