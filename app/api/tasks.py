"""/api/v1/tasks: create, list, get, cancel, retry, follow up, events. Thin: calls app.service."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status

from app import service
from app.schemas import FollowUpCreate, Page, TaskCreate, TaskEventOut, TaskOut

router = APIRouter(prefix="/api/v1", tags=["tasks"])


def _not_found(task_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")


@router.post("/tasks", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
def create_task(body: TaskCreate) -> TaskOut:
    try:
        return service.create_task(body)
    except service.QueueUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


@router.get("/tasks", response_model=Page[TaskOut])
def list_tasks(
    status_: str | None = Query(None, alias="status"),
    q: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(None, ge=1),
) -> Page[TaskOut]:
    return service.list_tasks(status=status_, text=q, limit=limit, before_id=cursor)


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(task_id: int) -> TaskOut:
    try:
        return service.get_task(task_id)
    except service.TaskNotFound as exc:
        raise _not_found(task_id) from exc


@router.get("/tasks/{task_id}/events", response_model=list[TaskEventOut])
def task_events(task_id: int, after: str | None = None, limit: int = Query(1000, ge=1, le=5000)):
    get_task(task_id)
    return service.list_events(task_id, after=after, limit=limit)


def _act(task_id: int, action) -> TaskOut:  # noqa: ANN001
    try:
        return action()
    except service.TaskNotFound as exc:
        raise _not_found(task_id) from exc
    except service.InvalidTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.post("/tasks/{task_id}/cancel", response_model=TaskOut)
def cancel_task(task_id: int) -> TaskOut:
    return _act(task_id, lambda: service.cancel_task(task_id))


@router.post("/tasks/{task_id}/retry", response_model=TaskOut)
def retry_task(task_id: int) -> TaskOut:
    return _act(task_id, lambda: service.retry_task(task_id))


@router.post("/tasks/{task_id}/follow-up", response_model=TaskOut)
def follow_up(task_id: int, body: FollowUpCreate) -> TaskOut:
    return _act(task_id, lambda: service.follow_up(task_id, body))


@router.get("/health", tags=["health"])
def health() -> dict[str, str]:
    return {"status": "ok"}
