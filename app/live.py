"""Live task events over Redis Streams: one capped stream per task plus a global status stream."""

from __future__ import annotations

import json

from redis import Redis
from redis.client import Pipeline

from app.events import Event, StatusEvent, parse_event
from app.queue import get_redis
from app.settings import get_settings

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
        raw = fields.get(b"e") or fields.get("e")
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        out.append((eid, parse_event(raw)))
    return out


def read(
    task_id: int, after: str = "0", block_ms: int | None = None, count: int = 500
) -> list[tuple[str, Event]]:
    """Events of a task after stream id `after`, waiting up to `block_ms` for new ones."""
    result = get_redis().xread({task_stream(task_id): after}, count=count, block=block_ms)
    if not result:
        return []
    return _decode(result[0][1])


def read_global(after: str = "$", block_ms: int | None = None, count: int = 500):
    """Status events of all tasks after `after`: list of (stream id, task id, event)."""
    result = get_redis().xread({GLOBAL_STREAM: after}, count=count, block=block_ms)
    if not result:
        return []
    out = []
    for entry_id, fields in result[0][1]:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        out.append((eid, int(fields[b"task_id"]), parse_event(fields[b"e"])))
    return out


def last_global_id() -> str:
    """The id of the newest global event, or '0-0'."""
    entries = get_redis().xrevrange(GLOBAL_STREAM, count=1)
    if not entries:
        return "0-0"
    eid = entries[0][0]
    return eid.decode() if isinstance(eid, bytes) else eid


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


async def aread(task_id: int, after: str = "0", block_ms: int | None = None, count: int = 500):
    """Async `read`: events of a task after `after`."""
    result = await async_redis().xread({task_stream(task_id): after}, count=count, block=block_ms)
    return _decode(result[0][1]) if result else []


async def aread_global(after: str = "$", block_ms: int | None = None, count: int = 500):
    """Async `read_global`: (stream id, task id, event) of status changes after `after`."""
    result = await async_redis().xread({GLOBAL_STREAM: after}, count=count, block=block_ms)
    if not result:
        return []
    out = []
    for entry_id, fields in result[0][1]:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        out.append((eid, int(fields[b"task_id"]), parse_event(fields[b"e"])))
    return out
