"""The STDIO run in this process: what `python -m worker.wrapper` does with a spec.

`main` reads ONE JSON task spec (the fields of `worker.claude_code.RunSpec`), runs it through
`run_claude` -- the same code path as the RQ job -- and writes one JSON event per line in
Taskdeck's event schema (app/events.py, docs/events.md), the last a `status` event. The exit
codes are worker/wrapper.py's. It runs either in the wrapper's own process or in a child of the
warm runner (worker/warm_runner.py), which has already imported all this.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import IO, Any

from pydantic import ValidationError

from app.events import ErrorEvent, Event, StatusEvent
from worker.wrapper import EXIT_BAD_SPEC, EXIT_CANCELLED, EXIT_CODES

MAX_SPEC_BYTES = 2_000_000


class EventWriter:
    """Writes events as JSON lines; notices when the reader has gone away."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.broken = False
        self.on_broken: Any = None

    def __call__(self, event: Event) -> None:
        if self.broken:
            return
        try:
            self.out.write(event.model_dump_json() + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.broken = True
            if self.on_broken is not None:
                self.on_broken()


def parse_spec(text: str):  # noqa: ANN201 - returns RunSpec; imported lazily below
    """The RunSpec in `text`, or an ErrorEvent of kind bad_spec naming the (first) bad field."""
    from worker.claude_code import RunSpec

    if len(text) > MAX_SPEC_BYTES:
        return _bad_spec(None, f"the spec is larger than {MAX_SPEC_BYTES} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return _bad_spec(None, f"stdin is not one JSON object: {exc}")
    if not isinstance(data, dict):
        return _bad_spec(None, "stdin must hold one JSON object (the task spec)")
    try:
        return RunSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        return _bad_spec(field, error["msg"])


def _bad_spec(field: str | None, message: str) -> ErrorEvent:
    where = f"{field}: " if field else ""
    return ErrorEvent(kind="bad_spec", field=field, message=f"bad spec: {where}{message}")


async def run(spec: Any, write: EventWriter) -> int:
    """Run the spec, cancelling it on SIGTERM/SIGINT or when stdout closes; the exit code."""
    from worker.claude_code import run_claude

    loop = asyncio.get_running_loop()
    runner = asyncio.ensure_future(run_claude(spec, write, attempt=1))

    def cancel() -> None:
        # Once: a second signal must not interrupt the group kill the first one started.
        if not cancelled:
            cancelled.append(True)
            runner.cancel()

    cancelled: list[bool] = []

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, cancel)
    write.on_broken = cancel
    try:
        outcome = await runner
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    reason = outcome.error.message if outcome.error else None
    if reason is None and outcome.result is not None and outcome.result.is_error:
        reason = (outcome.result.text or outcome.result.subtype or "claude reported an error")[:500]
    write(StatusEvent(attempt=1, status=outcome.status, reason=reason))
    return EXIT_CODES[outcome.status]


def default_config_dir() -> str:
    """CLAUDE_CONFIG_DIR for wrapper runs that name none: one stable directory, so a later
    run can `resume` a session (transcripts are looked up there)."""
    from app.settings import get_settings

    path = get_settings().claude_config_root / "stdio"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def main(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Read the spec, run it, write the events; returns the exit code."""
    stdin = stdin or sys.stdin
    write = EventWriter(stdout or sys.stdout)
    spec = parse_spec(stdin.read(MAX_SPEC_BYTES + 1))
    if isinstance(spec, ErrorEvent):
        write(spec)
        return EXIT_BAD_SPEC
    if spec.config_dir is None:
        spec = spec.model_copy(update={"config_dir": default_config_dir()})
    try:
        return asyncio.run(run(spec, write))
    except KeyboardInterrupt:  # a signal that came before the handlers were in place
        write(StatusEvent(attempt=1, status="cancelled", reason="interrupted"))
        return EXIT_CANCELLED
