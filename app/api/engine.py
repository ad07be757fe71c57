"""/api/v1/queues and /api/v1/schedules: queue figures, pause / resume (admins), requeue of
failed tasks, and schedules CRUD. Thin: every route calls app.service (the engine's functions).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Response, status

from app import service
from app.api.deps import MAX_ID, Admin, Reader, Writer
from app.schemas import (
    BulkResult,
    QueueControlOut,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
)

router = APIRouter(prefix="/api/v1")

Priority = Annotated[Literal["high", "default", "low"], Path(description="The queue's priority.")]
ScheduleId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/queues", response_model=list[QueueControlOut], tags=["queues"])
def list_queues(_: Reader) -> list[QueueControlOut]:
    """The priority queues: jobs queued, running, scheduled, rate-limited; failed tasks; paused."""
    return service.queue_overview()


@router.post("/queues/{priority}/pause", response_model=QueueControlOut, tags=["queues"])
def pause_queue(priority: Priority, _: Admin) -> QueueControlOut:
    """Stop starting this queue's jobs (running ones go on, queued ones wait)."""
    return service.set_queue_paused(priority, True)


@router.post("/queues/{priority}/resume", response_model=QueueControlOut, tags=["queues"])
def resume_queue(priority: Priority, _: Admin) -> QueueControlOut:
    """Start this queue's jobs again."""
    return service.set_queue_paused(priority, False)


@router.post("/queues/{priority}/requeue-failed", response_model=BulkResult, tags=["queues"])
def requeue_failed(priority: Priority, _: Writer) -> BulkResult:
    """Retry the failed tasks of this queue, oldest first."""
    return service.requeue_failed(priority)


def _schedule_not_found(schedule_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"schedule {schedule_id} not found")


@router.get("/schedules", response_model=list[ScheduleOut], tags=["schedules"])
def list_schedules(_: Reader) -> list[ScheduleOut]:
    """Every schedule, soonest next run first."""
    return service.list_schedules()


@router.post(
    "/schedules",
    response_model=ScheduleOut,
    status_code=status.HTTP_201_CREATED,
    tags=["schedules"],
)
def create_schedule(body: ScheduleCreate, _: Writer) -> ScheduleOut:
    """Submit a task at a time (`run_at`) or on a cron expression (`cron`)."""
    return service.create_schedule(body)


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut, tags=["schedules"])
def get_schedule(schedule_id: ScheduleId, _: Reader) -> ScheduleOut:
    """One schedule with its next and last run."""
    try:
        return service.get_schedule(schedule_id)
    except service.ScheduleNotFound as exc:
        raise _schedule_not_found(schedule_id) from exc


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut, tags=["schedules"])
def update_schedule(schedule_id: ScheduleId, body: ScheduleUpdate, _: Writer) -> ScheduleOut:
    """Change a schedule; absent fields stay as they are."""
    try:
        return service.update_schedule(schedule_id, body)
    except service.ScheduleNotFound as exc:
        raise _schedule_not_found(schedule_id) from exc


@router.post("/schedules/{schedule_id}/pause", response_model=ScheduleOut, tags=["schedules"])
def pause_schedule(schedule_id: ScheduleId, _: Writer) -> ScheduleOut:
    """Stop a schedule from firing."""
    try:
        return service.pause_schedule(schedule_id)
    except service.ScheduleNotFound as exc:
        raise _schedule_not_found(schedule_id) from exc


@router.post("/schedules/{schedule_id}/resume", response_model=ScheduleOut, tags=["schedules"])
def resume_schedule(schedule_id: ScheduleId, _: Writer) -> ScheduleOut:
    """Let a paused schedule fire again."""
    try:
        return service.resume_schedule(schedule_id)
    except service.ScheduleNotFound as exc:
        raise _schedule_not_found(schedule_id) from exc


@router.delete(
    "/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["schedules"]
)
def delete_schedule(schedule_id: ScheduleId, _: Writer) -> Response:
    """Remove a schedule (the tasks it made stay)."""
    try:
        service.delete_schedule(schedule_id)
    except service.ScheduleNotFound as exc:
        raise _schedule_not_found(schedule_id) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
