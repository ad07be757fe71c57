"""State of one task's page: the task, its attempts and its event log, live from Redis."""

from __future__ import annotations

import reflex as rx

from app import live, service
from app.events import TextDeltaEvent, TextEvent
from app.presenters import attach_result, conversation, diff_files, event_item, task_detail
from app.schemas import FollowUpCreate, TaskEventOut
from app.state.base import client_connected

REFRESH_TYPES = {"status", "result", "diff", "progress", "init"}


class TaskDetailState(rx.State):
    """One task page; a background event follows only this task's stream."""

    task_id: int = 0
    task: dict[str, str] = {}
    events: list[dict[str, str]] = []
    attempts: list[dict[str, str]] = []
    typing: str = ""
    last_stream_id: str = "0"
    not_found: bool = False
    follow_up_text: str = ""
    action_error: str = ""
    follower: int = 0
    turn: int = 0
    max_turns: int = 0
    diff: list[dict[str, str]] = []

    @rx.var
    def progress_pct(self) -> int:
        """Turns used, in percent of the task's max turns."""
        return min(100, int(100 * self.turn / self.max_turns)) if self.max_turns else 0

    def _task_id_from_url(self) -> int:
        path = str(self.router.url.path).rstrip("/")
        try:
            return int(path.rsplit("/", 1)[-1])
        except ValueError:
            return 0

    def _refresh_task(self) -> None:
        try:
            task = service.get_task(self.task_id)
        except service.TaskNotFound:
            self.task, self.not_found, self.diff = {}, True, []
            return
        self.task = task_detail(task)
        self.not_found = False
        self.max_turns = self.max_turns or task.max_turns
        self.turn = max(self.turn, task.num_turns) if task.status == "running" else task.num_turns
        diff = service.get_task_diff(self.task_id) if task.files_changed else None
        self.diff = diff_files(diff) if diff else []
        self.attempts = [
            {
                "number": str(a.number),
                "kind": a.kind,
                "status": a.status,
                "reason": a.reason or "",
                "worker": a.worker or "",
                "cost": f"${a.cost_usd:.4f}",
                "turns": str(a.num_turns),
            }
            for a in service.list_attempts(self.task_id)
        ]

    @rx.event
    def load(self):
        """Page load: the stored history, then follow the live stream from where it ends."""
        self.task_id = self._task_id_from_url()
        self.events, self.typing, self.action_error = [], "", ""
        self.turn, self.max_turns = 0, 0
        self._refresh_task()
        if self.not_found:
            return
        stored = service.list_events(self.task_id, limit=5000)
        self.events = conversation(stored)
        for event in stored:
            if event.type == "progress":
                self.turn = int(event.data.get("turn") or 0)
                self.max_turns = int(event.data.get("max_turns") or self.max_turns)
        if self.task.get("status") != "running":  # finished: the stored count is the truth
            self.turn = int(self.task.get("turns", "0/0").split("/")[0])
        self.last_stream_id = stored[-1].stream_id if stored else "0"
        self.follower += 1
        return TaskDetailState.follow

    @rx.event(background=True)
    async def follow(self):
        """Append this task's new events as they arrive, while the tab shows this task."""
        async with self:
            task_id, after, me = self.task_id, self.last_stream_id, self.follower
            token = self.router.session.client_token
        while client_connected(token):
            entries = await live.aread(task_id, after, block_ms=1000)
            async with self:
                shown = self.router.url.path.rstrip("/") == f"/tasks/{task_id}"
                if self.follower != me or self.task_id != task_id or not shown:
                    return  # the tab moved to another page or task
                if not entries:
                    continue
                refresh = False
                for stream_id, event in entries:
                    after = stream_id
                    if isinstance(event, TextDeltaEvent):
                        self.typing += event.text
                        continue
                    if isinstance(event, TextEvent):
                        self.typing = ""
                    item = TaskEventOut(
                        stream_id=stream_id,
                        attempt=event.attempt,
                        type=event.type,
                        ts=event.ts,
                        data=event.model_dump(exclude={"type", "ts", "attempt"}),
                    )
                    if event.type == "progress":
                        self.turn, self.max_turns = event.turn, event.max_turns
                    elif event.type != "tool_result" or not attach_result(self.events, item):
                        self.events.append(event_item(item))
                    refresh = refresh or event.type in REFRESH_TYPES
                self.last_stream_id = after
                if refresh:
                    self._refresh_task()

    @rx.event
    def cancel(self):
        try:
            service.cancel_task(self.task_id)
        except (service.InvalidTransition, service.TaskNotFound) as exc:
            self.action_error = str(exc)
        self._refresh_task()

    @rx.event
    def retry(self):
        try:
            service.retry_task(self.task_id)
        except (service.InvalidTransition, service.TaskNotFound) as exc:
            self.action_error = str(exc)
        self._refresh_task()

    @rx.event
    def set_follow_up_text(self, value: str):
        self.follow_up_text = value

    @rx.event
    def send_follow_up_form(self, form: dict):
        """The follow-up form was submitted (Enter in its field or the Send button)."""
        return TaskDetailState.send_follow_up

    @rx.event
    def send_follow_up(self):
        try:
            service.follow_up(self.task_id, FollowUpCreate(prompt=self.follow_up_text))
        except (service.InvalidTransition, service.TaskNotFound) as exc:
            self.action_error = str(exc)
            return
        except ValueError as exc:
            message = str(exc)
            self.action_error = "write a follow-up prompt first" if "prompt" in message else message
            return
        self.follow_up_text = ""
        self.action_error = ""
        self._refresh_task()
