"""Live task events over Redis Streams: one capped stream per task plus a global status stream."""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError
from redis import Redis
from redis.client import Pipeline

from app import live_hub
from app.events import Event, StatusEvent, parse_event
from app.queue import get_redis
from app.settings import get_settings

log = logging.getLogger(__name__)

GLOBAL_STREAM = "taskdeck:events"
GLOBAL_MAXLEN = 10_000


def task_stream(task_id: int) -> str:
    """The Redis key of a task's event stream."""
    return f"taskdeck:task:{task_id}"


def publish(
    task_id: int, event: Event, redis: Redis | None = None, first_id: str | None = None
) -> str:
    """Append an event to the task's stream (and status events to the global one); return its id.

    `first_id`: the event is a new task's first, under this id ("ms-seq", chosen by the caller
    to store the event before publishing it); a stream an earlier task left under the same task
    id (a deleted task, an earlier database) is dropped first.
    """
    pipe = (redis or get_redis()).pipeline(transaction=False)
    publish_on(pipe, task_id, event, first_id)
    stream_id = pipe.execute()[0 if first_id is None else 1]
    return stream_id.decode() if isinstance(stream_id, bytes) else stream_id


def publish_on(pipe: Pipeline, task_id: int, event: Event, first_id: str | None = None) -> None:
    """Queue `publish`'s commands on a pipeline the caller executes (with more of its own)."""
    payload = event.model_dump_json()
    if first_id is not None:
        pipe.delete(task_stream(task_id))
    pipe.xadd(
        task_stream(task_id),
        {"e": payload},
        id=first_id or "*",
        maxlen=get_settings().stream_maxlen,
        approximate=True,
    )
    if isinstance(event, StatusEvent):
        pipe.xadd(
            GLOBAL_STREAM,
            {"task_id": str(task_id), "e": payload},
            maxlen=GLOBAL_MAXLEN,
            approximate=True,
        )


def _decode(entries) -> list[tuple[str, Event]]:  # noqa: ANN001
    out = []
    for entry_id, fields in entries:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        if (event := _event_of(eid, fields.get(b"e") or fields.get("e"))) is not None:
            out.append((eid, event))
    return out


def _decode_global(entries) -> list[tuple[str, int, Event]]:  # noqa: ANN001
    out = []
    for entry_id, fields in entries:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        try:
            task_id = int(fields[b"task_id"])
        except (KeyError, ValueError):
            log.warning("skipped stream entry %s: it names no task", eid)
            continue
        if (event := _event_of(eid, fields.get(b"e"))) is not None:
            out.append((eid, task_id, event))
    return out


def _event_of(entry_id: str, raw: bytes | str | None) -> Event | None:
    """The event an entry holds, or None (logged) for one this code cannot read: a newer
    worker's new kind of event during a rolling upgrade, say. A follower skips it rather than
    stop (one bad entry must not freeze every page that follows the stream)."""
    try:
        return parse_event(raw or b"")
    except ValidationError as exc:  # what was wrong, not the entry's content (it may be secret)
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        log.warning(
            "skipped stream entry %s: not an event this version reads (%s)",
            entry_id,
            "; ".join(error["msg"] for error in errors[:3]),
        )
        return None


def read(
    task_id: int, after: str = "0", block_ms: int | None = None, count: int = 500
) -> list[tuple[str, Event]]:
    """Events of a task after stream id `after`, waiting up to `block_ms` for new ones."""
    result = get_redis().xread({task_stream(task_id): after}, count=count, block=block_ms)
    if not result:
        return []
    return _decode(result[0][1])


def dumps(event: Event) -> str:
    """JSON text of an event (for the STDIO wrapper and the API)."""
    return json.dumps(event.model_dump(), separators=(",", ":"))


# Async readers for the web app: a blocked XREAD must not hold a thread per open tab.
_async_clients: dict[tuple[str, int], object] = {}


def async_redis():
    """A redis.asyncio client for the running event loop."""
    import asyncio

    from redis.asyncio import Redis as AsyncRedis

    url = get_settings().redis_url
    key = (url, id(asyncio.get_running_loop()))
    client = _async_clients.get(key)
    if client is None:
        client = AsyncRedis.from_url(url, health_check_interval=30)
        _async_clients[key] = client
    return client


def follow_task(task_id: int, after: str = "0"):  # noqa: ANN201
    """`async with follow_task(id, after) as feed`: `await feed.next(timeout_s)` returns the
    task's new events as (stream id, event), read by the process's one XREAD (app/live_hub.py)."""
    return live_hub.follow(async_redis(), task_stream(task_id), after, _decode)


def follow_global(after: str = "$"):  # noqa: ANN201
    """As `follow_task`, for the status events of all tasks: (stream id, task id, event)."""
    return live_hub.follow(async_redis(), GLOBAL_STREAM, after, _decode_global)
