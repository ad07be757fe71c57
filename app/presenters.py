"""Turn tasks and events into the flat, display-ready dicts the UI shows (no reflex import)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from app.schemas import TaskEventOut, TaskOut

# Anything that could make markdown more than plain text: emphasis, code, headings, links,
# tables, quotes, lists, rules, entities, hard breaks.
MARKDOWN_SYNTAX = re.compile(
    r"[*_`#\[\]|<>~\\&]|^\s*([-+]|\d+[.)])\s|^\s*[-=]{3,}|  \n|https?://|www\.", re.M
)

STATUS_TONES = {
    "queued": "gray",
    "running": "blue",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "orange",
}


def when(value: datetime | None) -> str:
    """A datetime for display, or an empty string."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def seconds_since(value: datetime) -> int:
    """Whole seconds from `value` (UTC when it has no zone) until now, never below 0."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return max(0, int(datetime.now(UTC).timestamp() - aware.timestamp()))


def money(value: float) -> str:
    """Dollars with four decimals."""
    return f"${value:.4f}"


def duration(ms: int) -> str:
    """Milliseconds as ms, s or min."""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def usage_values(data: dict, estimated: bool = True, settled: dict | None = None) -> dict[str, str]:
    """Tokens and cost of a usage (or result) event's data, for display: {tokens_in, tokens_out,
    tokens, cost}; an estimated cost is marked ~, an unknown one (model price unknown) is "-".
    `settled` (`settled_usage`: what the task's finished attempts spent) is added, so a retry or
    a follow-up shows the task's whole spend, as its row will once the attempt is settled."""
    settled = settled or {}
    tokens_in = int(data.get("input_tokens") or 0) + int(settled.get("input_tokens") or 0)
    tokens_out = int(data.get("output_tokens") or 0) + int(settled.get("output_tokens") or 0)
    cost = data.get("cost_usd")
    if cost is not None:
        cost = float(cost) + float(settled.get("cost_usd") or 0.0)
    return {
        "tokens_in": str(tokens_in),
        "tokens_out": str(tokens_out),
        "tokens": str(tokens_in + tokens_out),
        "cost": "-" if cost is None else ("~" if estimated else "") + money(float(cost)),
    }


def settled_usage(task: TaskOut) -> dict[str, str]:
    """What a task's finished attempts spent (its stored totals), as strings for a row."""
    return {
        "input_tokens": str(task.input_tokens),
        "output_tokens": str(task.output_tokens),
        "cost_usd": repr(task.cost_usd),
    }


def with_usage(row: dict[str, str], usage: dict | None) -> dict[str, str]:
    """A task row showing a running task's usage so far: its settled totals plus its current
    attempt's newest usage event."""
    if not usage:
        return row
    settled = {name[len("settled_") :]: v for name, v in row.items() if name.startswith("settled_")}
    values = usage_values(usage, settled=settled)
    return {**row, "tokens": values["tokens"], "cost": values["cost"], "usage_live": "true"}


def run_duration(task: TaskOut) -> str:
    """How long the latest run took: Claude Code's own count, or for a run that ended without a
    result (cancelled, timed out, lost) the time from its start to its end ("" while it runs)."""
    if task.duration_ms:
        return duration(task.duration_ms)
    if task.started_at and task.finished_at and task.finished_at >= task.started_at:
        return duration(int((task.finished_at - task.started_at).total_seconds() * 1000))
    return ""


def task_row(task: TaskOut, usage: dict | None = None) -> dict[str, str]:
    """A task as a list row / card; `usage` is the newest usage event of a running task."""
    return with_usage(_task_row(task), usage)


def _task_row(task: TaskOut) -> dict[str, str]:
    return {
        "id": str(task.id),
        "title": task.title,
        "status": task.status,
        "tone": STATUS_TONES.get(task.status, "gray"),
        "reason": task.status_reason or "",
        "model": task.model,
        "priority": task.priority,
        "created": when(task.created_at),
        "cost": money(task.cost_usd),
        "tokens": str(task.input_tokens + task.output_tokens),
        "turns": f"{task.num_turns}/{task.max_turns}",
        "duration": run_duration(task),
        "where": task.repo or task.cwd or task.workspace or "fresh workspace",
        "href": f"/tasks/{task.id}",
        "active": "true" if task.status in ("queued", "running") else "",
        "retryable": "true" if task.status in ("failed", "cancelled") else "",
        "usage_live": "",
        **{f"settled_{name}": value for name, value in settled_usage(task).items()},
    }


def task_detail(task: TaskOut) -> dict[str, str]:
    """A task with everything its page shows."""
    row = task_row(task)
    row.update(
        prompt=task.prompt,
        result=task.result_text or "",
        input_tokens=str(task.input_tokens),
        output_tokens=str(task.output_tokens),
        cache_tokens=str(task.cache_read_tokens + task.cache_creation_tokens),
        attempts=f"{task.attempts_count}/{task.max_attempts}",
        started=when(task.started_at),
        elapsed_s=(
            str(seconds_since(task.started_at))
            if task.status == "running" and task.started_at
            else ""
        ),
        finished=when(task.finished_at),
        session=task.session_id or "",
        workspace=task.workspace or "",
        diffstat=(
            diffstat(task.files_changed, task.lines_added, task.lines_removed)
            if task.files_changed
            else ""
        ),
    )
    return row


def diffstat(files: int, added: object, removed: object) -> str:
    """What a diff changed, in words: "1 file, +9 -0", "3 files, +40 -2"."""
    return f"{files} file{'' if files == 1 else 's'}, +{added} -{removed}"


def event_item(event: TaskEventOut) -> dict[str, str]:
    """An event as one line of the task's log: kind, label, body, tone."""
    data = event.data
    kind = event.type
    label, body, tone = kind, "", "gray"
    if kind == "status":
        label = f"status: {data.get('status')}"
        body = data.get("reason") or ""
        tone = STATUS_TONES.get(str(data.get("status")), "gray")
    elif kind == "init":
        label = "Claude Code started"
        body = f"model {data.get('model')} · session {data.get('session_id')}"
    elif kind == "text":
        label, body, tone = "assistant", data.get("text", ""), "violet"
    elif kind == "thinking":
        label, body = "thinking", data.get("text", "")
    elif kind == "tool_use":
        label, tone = f"tool: {data.get('name')}", "cyan"
        body = json.dumps(data.get("input") or {}, indent=2, ensure_ascii=False)[:4000]
    elif kind == "tool_result":
        failed = data.get("is_error")
        label, tone = ("tool error" if failed else "tool result"), ("red" if failed else "gray")
        body = data.get("output", "")
    elif kind == "api_retry":
        label, tone = "API retry", "amber"
        body = (
            f"retry {data.get('retry')} of {data.get('max_retries')} in "
            f"{data.get('delay_ms')} ms (status {data.get('error_status')})"
        )
    elif kind == "progress":
        label = f"turn {data.get('turn')} of {data.get('max_turns')}"
    elif kind == "usage":
        values = usage_values(data)
        label = f"usage: {values['tokens_in']} in / {values['tokens_out']} out tokens"
        body = f"cost {values['cost']}"
    elif kind == "result":
        failed = data.get("is_error")
        label, tone = ("result: error" if failed else "result"), ("red" if failed else "green")
        body = (data.get("text") or "") + (
            f"\n\n{data.get('num_turns')} turns · ${float(data.get('cost_usd') or 0):.4f} · "
            f"{data.get('input_tokens')} in / {data.get('output_tokens')} out tokens"
        )
    elif kind == "stderr":
        label, body = "stderr", data.get("line", "")
    elif kind == "error":
        label, body, tone = f"error: {data.get('kind')}", data.get("message", ""), "red"
    elif kind == "diff":
        label = "diff"
        added, removed = data.get("lines_added"), data.get("lines_removed")
        body = diffstat(data.get("files_changed") or 0, added, removed)
    elif kind == "raw":
        inner = data.get("data") if isinstance(data.get("data"), dict) else data
        label = " ".join(str(inner.get(k)) for k in ("type", "subtype") if inner.get(k)) or "raw"
        body = json.dumps(data, ensure_ascii=False)[:2000]
    elif kind == "prompt":
        label, tone = ("follow-up prompt" if data.get("resume") else "prompt"), "indigo"
        body = data.get("text", "")
    return {
        "id": event.stream_id,
        "kind": kind,
        "label": label,
        "body": str(body),
        "tone": tone,
        "time": datetime.fromtimestamp(event.ts).strftime("%H:%M:%S"),
        "tool_id": str(data.get("id") or "") if kind == "tool_use" else "",
        "summary": tool_summary(data) if kind == "tool_use" else "",
        "result": "",
        "result_state": "pending" if kind == "tool_use" else "",
        "error": "true" if tone == "red" else "",
        "markdown": "true" if kind in ("text", "result") and MARKDOWN_SYNTAX.search(body) else "",
    }


def tool_summary(data: dict) -> str:
    """One line saying what a tool call does: its name and its main argument."""
    args = data.get("input") or {}
    for key in ("command", "file_path", "path", "pattern", "url", "description"):
        if args.get(key):
            value = str(args[key]).splitlines()[0]
            return f"{data.get('name')}: {value[:100]}"
    return str(data.get("name") or "tool")


def attach_result(items: list[dict[str, str]], event: TaskEventOut) -> bool:
    """Put a tool result into the entry of its tool call (newest first); False if none matches."""
    tool_id = str(event.data.get("tool_use_id") or "")
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if item["kind"] == "tool_use" and item["tool_id"] == tool_id and tool_id:
            failed = bool(event.data.get("is_error"))
            items[index] = {
                **item,
                "result": str(event.data.get("output") or "(no output)"),
                "result_state": "error" if failed else "ok",
                "tone": "red" if failed else item["tone"],
                "error": "true" if failed else "",
            }
            return True
    return False


def conversation(events: list[TaskEventOut]) -> list[dict[str, str]]:
    """Stored events as the task page shows them: tool results folded into their tool calls,
    progress and usage events left out (the header shows the latest)."""
    items: list[dict[str, str]] = []
    for event in events:
        if event.type in ("progress", "usage"):
            continue
        if event.type == "tool_result" and attach_result(items, event):
            continue
        items.append(event_item(event))
    return items


def age(seconds: float | None) -> str:
    """A short age: 3 s, 4 min, 2 h."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
