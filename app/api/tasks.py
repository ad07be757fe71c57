"""/api/v1/tasks: create, list, get, cancel, retry, follow up, delete, bulk actions, the task's
attempts and its events (paged history and a live Server-Sent Events stream). Thin: every route
calls app.service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Literal

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field

from app import live, service
from app.api.deps import MAX_ID, Reader, Writer, run_write
from app.events import StatusEvent
from app.models import TaskStatus
from app.schemas import (
    NO_NUL,
    AttemptOut,
    BulkResult,
    FollowUpCreate,
    Page,
    TaskCreate,
    TaskEventOut,
    TaskOut,
    TaskSummary,
)

router = APIRouter(prefix="/api/v1", tags=["tasks"])

TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's id.")]
STREAM_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"
StatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _json(model: BaseModel, status_code: int = status.HTTP_200_OK) -> Response:
    """The model as JSON, serialized once by pydantic (not validated again on the way out)."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


def _not_found(task_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")


def _act(task_id: int, action: Callable[[], TaskOut]) -> TaskOut:
    try:
        return action()
    except service.TaskNotFound as exc:
        raise _not_found(task_id) from exc
    except service.InvalidTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except service.QueueUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


async def _write(task_id: int, action: Callable[[], TaskOut]) -> TaskOut:
    """`_act` in the API's write lane (app.api.deps.run_write)."""
    return await run_write(lambda: _act(task_id, action))


@router.post("/tasks", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
async def create_task(body: TaskCreate, _: Writer) -> Response:
    """Submit a task: stored as `queued` and put on its priority queue."""
    try:
        return _json(await run_write(lambda: service.create_task(body)), status.HTTP_201_CREATED)
    except service.QueueUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


@router.get("/tasks", response_model=Page[TaskSummary])
def list_tasks(
    _: Reader,
    status_: Annotated[StatusName | None, Query(alias="status")] = None,
    priority: Literal["high", "default", "low"] | None = None,
    repo: Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=NO_NUL, description="Text in title or prompt."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=MAX_ID, description="`next_cursor`.")] = None,
) -> Response:
    """Newest tasks first; pass `next_cursor` back as `cursor` for the next page."""
    return _json(
        service.list_task_summaries(
            status=status_, priority=priority, repo=repo, text=q, limit=limit, before_id=cursor
        )
    )


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(task_id: TaskId, _: Reader) -> Response:
    """One task with its latest outcome."""
    return _json(_act(task_id, lambda: service.get_task(task_id)))


@router.delete("/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(task_id: TaskId, _: Writer) -> Response:
    """Remove a finished task and its history (a queued or running one: cancel it first)."""
    try:
        await run_write(lambda: service.delete_task(task_id))
    except service.TaskNotFound as exc:
        raise _not_found(task_id) from exc
    except service.InvalidTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tasks/{task_id}/cancel", response_model=TaskOut)
async def cancel_task(task_id: TaskId, _: Writer) -> TaskOut:
    """Cancel a queued or running task (a running one's claude process is killed)."""
    return await _write(task_id, lambda: service.cancel_task(task_id))


@router.post("/tasks/{task_id}/retry", response_model=TaskOut)
async def retry_task(task_id: TaskId, _: Writer) -> TaskOut:
    """Run a failed or cancelled task again."""
    return await _write(task_id, lambda: service.retry_task(task_id))


@router.post("/tasks/{task_id}/follow-up", response_model=TaskOut)
async def follow_up(task_id: TaskId, body: FollowUpCreate, _: Writer) -> TaskOut:
    """Continue a finished task's Claude session with a new prompt."""
    return await _write(task_id, lambda: service.follow_up(task_id, body))


class BulkAction(BaseModel):
    """The same action on several tasks."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["cancel", "retry"]
    task_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=500)


@router.post("/tasks/bulk", response_model=BulkResult)
async def bulk(body: BulkAction, _: Writer) -> BulkResult:
    """Cancel or retry several tasks at once: `done` lists the tasks acted on, `skipped` says
    why the others were left alone (not found, or not in a state that allows it)."""
    ids = list(dict.fromkeys(body.task_ids))
    action = service.cancel_many if body.action == "cancel" else service.retry_many
    return await run_write(lambda: action(ids))


@router.get("/tasks/{task_id}/attempts", response_model=list[AttemptOut])
def task_attempts(task_id: TaskId, _: Reader) -> list[AttemptOut]:
    """Each run of the task in order (the first, retries, follow-ups), with its own outcome,
    cost and tokens; the task's totals are their sums."""
    _act(task_id, lambda: service.get_task(task_id))
    return service.list_attempts(task_id)


@router.get("/tasks/{task_id}/events", response_model=Page[TaskEventOut])
def task_events(
    task_id: TaskId,
    _: Reader,
    after: Annotated[str | None, Query(pattern=STREAM_ID, description="A stream id.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Page[TaskEventOut]:
    """Stored events in order; `next_cursor` (a stream id) is the `after` of the next page."""
    _act(task_id, lambda: service.get_task(task_id))
    items = service.list_events(task_id, after=after, limit=limit)
    next_cursor = items[-1].stream_id if len(items) == limit else None
    return Page[TaskEventOut](items=items, next_cursor=next_cursor)


def existing_task(task_id: TaskId, _: Reader) -> TaskOut:
    """The task of the path, or 404 (as a dependency: checked before a stream starts)."""
    return _act(task_id, lambda: service.get_task(task_id))


@router.get("/tasks/{task_id}/events/stream", response_class=EventSourceResponse)
async def stream_events(
    task_id: TaskId,
    request: Request,
    task: Annotated[TaskOut, Depends(existing_task)],
    after: Annotated[str | None, Query(pattern=STREAM_ID)] = None,
    last_event_id: Annotated[str | None, Header(pattern=STREAM_ID)] = None,
    max_s: Annotated[
        float | None, Query(gt=0, le=86_400, description="Close the stream after this long.")
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The task's events live, as Server-Sent Events (`id` = stream id, `event` = type).

    Starts after `after` / `Last-Event-ID` (default: the beginning of the live stream) and ends
    once the task has reached a terminal status (or after `max_s`: reconnect with Last-Event-ID).
    """
    position = last_event_id or after or "0"
    finished = task.status in TaskStatus.TERMINAL
    deadline = time.monotonic() + max_s if max_s else float("inf")
    async with live.follow_task(task_id, position) as feed:
        while not await request.is_disconnected() and time.monotonic() < deadline:
            wait_s = max(0.001, min(1.0, deadline - time.monotonic()))
            entries = await feed.next(timeout_s=wait_s)
            for stream_id, event in entries:
                if isinstance(event, StatusEvent) and event.status in TaskStatus.TERMINAL:
                    finished = True
                elif isinstance(event, StatusEvent):
                    finished = False
                yield ServerSentEvent(raw_data=live.dumps(event), event=event.type, id=stream_id)
            if entries:
                continue
            if finished:
                current = await asyncio.to_thread(service.get_task, task_id)
                if current.status in TaskStatus.TERMINAL:
                    return
                finished = False
            yield ServerSentEvent(comment="keep-alive")
