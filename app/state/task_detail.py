"""State of one task's page: the task, its attempts and its event log, live from Redis.

Several state classes, because the browser re-renders every component that reads a state class
when any of that class's vars changes, and Reflex sends a changed var whole:
TaskDetailState holds what changes rarely (the task, attempts, the conversation stored before the
page opened); the entries that arrive while the page is open go to the log parts, TaskLogPart0
... TaskLogPart{LIVE_PARTS - 1}, PART_SIZE entries each, filled in order, each a state class of
its own: a new entry re-sends its part only, re-renders only its part's list, and no entry ever
moves to another list (the browser mounts each once); TaskLiveState holds what changes with
every event (the text being typed, the turn, the tokens) and the loop that follows the stream.
"""

from __future__ import annotations

import time

import reflex as rx

from app import live, service
from app.diff_display import DiffFile, diff_files
from app.events import StatusEvent, TextDeltaEvent, TextEvent
from app.log_html import entry_row, typing_html
from app.presenters import (
    attach_result,
    conversation,
    event_item,
    settled_usage,
    task_detail,
    usage_values,
)
from app.schemas import FollowUpCreate, TaskEventOut
from app.state.base import client_connected, note_failure

PART_SIZE = 10  # entries per log part
LIVE_PARTS = 100  # log parts; when all are full (1,000 entries) they join TaskDetailState.entries
SHOWN_CHECK_S = 0.5  # how often a busy follower checks that its tab still shows the task
REFRESH_TYPES = {"status", "result", "diff", "progress", "init"}


def unwrapped(value):  # noqa: ANN001, ANN201
    """The plain object behind a state var's change-tracking proxy (read-only use)."""
    return getattr(value, "__wrapped__", value)


class TaskLiveState(rx.State):
    """The fast-changing part of a task page, and the loop that follows the task's stream.

    The loop lives here so that an ordinary event dirties (and so re-sends) only one log part,
    and this small state when the typing, the turn or the tokens change; TaskDetailState is
    touched when the parts are full or the task row must be read again."""

    _typing: str = ""  # the text being typed (the page gets its HTML, typing_html)
    turn: int = 0
    max_turns: int = 0
    usage: dict[str, str] = {}  # the running task's tokens and cost so far (usage events)
    _settled: dict[str, str] = {}  # what its finished attempts spent (presenters.settled_usage)
    _task_id: int = 0
    _after: str = "0"  # where the follow loop starts reading (set by the page load)
    _follower: int = 0  # bumped by every page load: an older loop sees it and stops
    _logged: int = 0  # entries in the log parts
    _refresh_failed: bool = False  # the task row could not be read: the loop tries again

    @rx.var
    def typing_html(self) -> str:
        """The text being typed, as the log shows it (markdown once it has markdown in it)."""
        return typing_html(self._typing)

    @rx.var
    def progress_pct(self) -> int:
        """Turns used, in percent of the task's max turns."""
        return min(100, int(100 * self.turn / self.max_turns)) if self.max_turns else 0

    def _clear(self) -> None:
        self._typing, self.turn, self.max_turns, self.usage = "", 0, 0, {}
        self._settled = {}
        self._refresh_failed = False

    @rx.event(background=True)
    async def follow(self):
        """Append this task's new events as they arrive, while the tab shows this task."""
        async with self:
            task_id, after, me = self._task_id, self._after, self._follower
            token = self.router.session.client_token
        page = f"/tasks/{task_id}"
        checked = 0.0
        async with live.follow_task(task_id, after) as feed:
            while client_connected(token):
                entries = await feed.next(timeout_s=1.0)
                async with self:
                    if self._follower != me:
                        return  # the tab loaded another task (or this one again)
                    now = time.monotonic()
                    if not entries or now - checked > SHOWN_CHECK_S:  # reading the URL costs
                        checked = now
                        if self.router.url.path.rstrip("/") != page:
                            return  # the tab moved to another page
                    if entries:
                        # The state itself, not the background task's proxy of it: `async
                        # with self` holds the lock, and through the proxy every read and
                        # write re-checks it and wraps lists in proxies of their own (about a
                        # third of `_apply`'s time: py-spy, 10 tabs).
                        await unwrapped(self)._apply(entries)
                    elif self._refresh_failed:  # quiet now: read the task row again
                        await unwrapped(self)._refresh()

    async def _apply(self, entries: list) -> None:
        """Add new stream entries to the page.

        Called on the state instance under the follow loop's lock (not on its proxy)."""
        refresh = False
        new: list[dict[str, str]] = []  # entries for the log
        detail = None
        for stream_id, event in entries:
            if isinstance(event, TextDeltaEvent):
                self._typing += event.text
                continue
            if isinstance(event, TextEvent | StatusEvent) and self._typing:
                self._typing = ""  # the text came whole, or its run ended (cancelled, failed)
            if event.type in ("usage", "result", "status"):  # the result is the truth at the end
                estimated = event.type == "usage"
                self.usage = (
                    {}
                    if event.type == "status"
                    else usage_values(event.model_dump(), estimated, self._settled)
                )
                if event.type == "usage":
                    continue
            item = TaskEventOut(
                stream_id=stream_id,
                attempt=event.attempt,
                type=event.type,
                ts=event.ts,
                data=event.model_dump(exclude={"type", "ts", "attempt"}),
            )
            if event.type == "progress":
                self.turn, self.max_turns = event.turn, event.max_turns
            elif event.type == "tool_result":  # fold it into its call, wherever that is
                if not (attach_result(new, item) or await self._attach_to_log(item)):
                    detail = detail or await self.get_state(TaskDetailState)
                    if not detail._attach(item):
                        new.append(event_item(item))
            else:
                new.append(event_item(item))
            refresh = refresh or event.type in REFRESH_TYPES
        while new := await self._add_to_log(new):
            # Every part is full: their entries join the stored conversation.
            detail = detail or await self.get_state(TaskDetailState)
            detail._show([*detail._items, *await self._take_log()])
        if refresh:
            await self._refresh(detail)

    async def _refresh(self, detail: TaskDetailState | None = None) -> None:
        """Read the task row again for the page. A failure (a database that does not answer,
        say) is logged and tried again by the follow loop, not raised: raised, it would end the
        loop, and the page would show this moment's status for good."""
        detail = detail or await self.get_state(TaskDetailState)
        try:
            detail._refresh_task(self)
        except Exception as exc:
            self._refresh_failed = note_failure(
                f"task {self._task_id}'s page", exc, self._refresh_failed
            )
        else:
            self._refresh_failed = False

    def _parts_in_use(self) -> range:
        """The indexes of the log parts holding entries, oldest first."""
        return range(-(-self._logged // PART_SIZE))

    async def _add_to_log(self, items: list[dict[str, str]]) -> list[dict[str, str]]:
        """Append entries to the log parts; return those that did not fit (every part full)."""
        while items and self._logged < PART_SIZE * LIVE_PARTS:
            index, used = divmod(self._logged, PART_SIZE)
            part = await self.get_state(LOG_PARTS[index])
            chunk, items = items[: PART_SIZE - used], items[PART_SIZE - used :]
            part._append(chunk)
            self._logged += len(chunk)
        return items

    async def _attach_to_log(self, result: TaskEventOut) -> bool:
        """Fold a tool result into its call in a log part (newest first); False if none has it."""
        for index in reversed(self._parts_in_use()):
            part = await self.get_state(LOG_PARTS[index])
            if part._attach(result):
                return True
        return False

    async def _take_log(self) -> list[dict[str, str]]:
        """Empty the log parts; return their entries, oldest first."""
        entries: list[dict[str, str]] = []
        for index in self._parts_in_use():
            part = await self.get_state(LOG_PARTS[index])
            entries += part._items
            part._show([])
        self._logged = 0
        return entries


class ShownEntries:
    """A list of log entries kept twice: `_items`, the display dicts (app.presenters), for the
    server to fold tool results into; `entries`, the rows the page shows (app.log_html: kind,
    error and the entry's HTML), made once per entry and again only when the entry changes.
    (A plain mixin: each state declares the two vars itself.)"""

    def _show(self, items: list[dict[str, str]]) -> None:
        """Show these entries instead (rows made anew)."""
        self._items = items
        self.entries = [entry_row(item) for item in items]

    def _append(self, items: list[dict[str, str]]) -> None:
        """Show these entries after the others (rows made for them only)."""
        self._items = [*self._items, *items]
        self.entries = [*unwrapped(self.entries), *map(entry_row, items)]

    def _attach(self, result: TaskEventOut) -> bool:
        """Fold a tool result into its call's entry (newest first); False if none has it."""
        held = unwrapped(self._items)  # the dicts themselves (a state wraps what it hands out)
        items = list(held)
        if not attach_result(items, result):
            return False
        rows = list(unwrapped(self.entries))
        for index, (old, new) in enumerate(zip(held, items, strict=True)):
            if old is not new:  # attach_result replaced this one
                rows[index] = entry_row(new)
                break
        self._items, self.entries = items, rows
        return True


class TaskLogPart(ShownEntries, rx.State, mixin=True):
    """One part of the live log (TaskLiveState fills the parts in order, PART_SIZE entries each).

    Each part is a state class of its own (TaskLogPart0 ... below) because the browser notifies
    every reader of a state when any var of it changes: with all parts in one state, each new
    entry re-rendered the reader of every part (40 of them; 200 parts made the 10-tab p95 of
    bench/live_latency.py ten times slower), now only its own part's list."""

    entries: list[list[str]] = []
    _items: list[dict[str, str]] = []


def _log_part_class(number: int) -> type[TaskLogPart]:
    name = f"TaskLogPart{number}"
    cls = type(name, (TaskLogPart, rx.State), {"__module__": __name__, "__qualname__": name})
    globals()[name] = cls  # importable by name: the Redis state manager pickles states
    return cls


LOG_PARTS: list[type[TaskLogPart]] = [_log_part_class(n) for n in range(LIVE_PARTS)]


def log_parts() -> list[rx.Var]:
    """The log parts' entries, in order (for the page's log view)."""
    return [part.entries for part in LOG_PARTS]


class TaskDetailState(ShownEntries, rx.State):
    """One task page; a background event follows only this task's stream."""

    task_id: int = 0
    task: dict[str, str] = {}
    entries: list[list[str]] = []  # the conversation before the log parts (rows, as shown)
    _items: list[dict[str, str]] = []  # the same as display dicts
    attempts: list[dict[str, str]] = []
    not_found: bool = False
    follow_up_text: str = ""
    action_error: str = ""
    diff: list[DiffFile] = []

    def _task_id_from_url(self) -> int:
        path = str(self.router.url.path).rstrip("/")
        try:
            return int(path.rsplit("/", 1)[-1])
        except ValueError:
            return 0

    def _refresh_task(self, live_state: TaskLiveState) -> None:
        try:
            task = service.get_task(self.task_id)
        except service.TaskNotFound:
            self.task, self.not_found, self.diff = {}, True, []
            return
        self.task = task_detail(task)
        self.not_found = False
        live_state.max_turns = live_state.max_turns or task.max_turns
        running = task.status == "running"
        if task.status in ("queued", "running"):  # the current attempt is not in the totals yet
            live_state._settled = settled_usage(task)
        live_state.turn = max(live_state.turn, task.num_turns) if running else task.num_turns
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
    async def load(self):
        """Page load: the stored history, then follow the live stream from where it ends."""
        live_state = await self.get_state(TaskLiveState)
        live_state._clear()
        await live_state._take_log()
        self.task_id = self._task_id_from_url()
        self._show([])
        self.action_error = ""
        # The stored events before the task row: the page follows the stream after the last
        # stored event, so a status change the row does not show yet must come after it. (Read
        # the other way round, a task ending between the two reads showed "running" for good:
        # the row from before its end, and its status event among the stored ones.) A worker
        # commits the row before it publishes the event and stores it after.
        stored = service.list_events(self.task_id, limit=5000)
        self._refresh_task(live_state)
        if self.not_found:
            return
        self._show(conversation(stored))
        for event in stored:
            if event.type == "progress":
                live_state.turn = int(event.data.get("turn") or 0)
                live_state.max_turns = int(event.data.get("max_turns") or live_state.max_turns)
            elif event.type in ("usage", "status"):  # usage of the current run only
                live_state.usage = (
                    usage_values(event.data, settled=live_state._settled)
                    if event.type == "usage"
                    else {}
                )
        if self.task.get("status") != "running":  # finished: the stored count is the truth
            live_state.turn = int(self.task.get("turns", "0/0").split("/")[0])
            live_state.usage = {}
        live_state._task_id = self.task_id
        live_state._after = stored[-1].stream_id if stored else "0"
        live_state._follower += 1
        return TaskLiveState.follow

    @rx.event
    async def cancel(self):
        try:
            service.cancel_task(self.task_id)
        except (service.InvalidTransition, service.TaskNotFound) as exc:
            self.action_error = str(exc)
        self._refresh_task(await self.get_state(TaskLiveState))

    @rx.event
    async def retry(self):
        try:
            service.retry_task(self.task_id)
        except (service.InvalidTransition, service.TaskNotFound) as exc:
            self.action_error = str(exc)
        self._refresh_task(await self.get_state(TaskLiveState))

    @rx.event
    def set_follow_up_text(self, value: str):
        self.follow_up_text = value

    @rx.event
    def send_follow_up_form(self, form: dict):
        """The follow-up form was submitted (Enter in its field or the Send button)."""
        return TaskDetailState.send_follow_up

    @rx.event
    async def send_follow_up(self):
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
        self._refresh_task(await self.get_state(TaskLiveState))
