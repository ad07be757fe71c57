"""State of one task's page: the task, its attempts and its event log, live from Redis."""

from __future__ import annotations

import reflex as rx

from app import live, service
from app.events import TextDeltaEvent, TextEvent
from app.presenters import event_item, task_detail
from app.schemas import FollowUpCreate, TaskEventOut
from app.state.base import client_connected

TERMINAL_REFRESH_TYPES = {"status", "result", "diff"}


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

    def _task_id_from_url(self) -> int:
        path = str(self.router.url.path).rstrip("/")
        try:
            return int(path.rsplit("/", 1)[-1])
        except ValueError:
            return 0

    def _refresh_task(self) -> None:
        try:
            self.task = task_detail(service.get_task(self.task_id))
            self.not_found = False
        except service.TaskNotFound:
            self.task, self.not_found = {}, True
            return
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
        self._refresh_task()
        if self.not_found:
            return
        stored = service.list_events(self.task_id, limit=5000)
        self.events = [event_item(e) for e in stored]
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
                if self.follower != me or self.task_id != task_id:
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
                    self.events.append(event_item(item))
                    refresh = refresh or event.type in TERMINAL_REFRESH_TYPES
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
    def send_follow_up(self):
        try:
            service.follow_up(self.task_id, FollowUpCreate(prompt=self.follow_up_text))
        except (service.InvalidTransition, service.TaskNotFound) as exc:
            self.action_error = str(exc)
            return
        except ValueError as exc:
            self.action_error = "write a follow-up prompt first" if "prompt" in str(exc) else str(exc)
            return
        self.follow_up_text = ""
        self.action_error = ""
        self._refresh_task()
